//! Tandem's state store: keys, budget spend, policy versions and request records.
//!
//! Two engines behind one [`Store`]: the embedded SQLite database (WAL mode) under the state directory,
//! the default, and PostgreSQL, which several replicas share. Request records are sent over a bounded
//! channel to one writer that inserts them in batches, so the request path never waits on the database;
//! [`Store::flush`] waits until everything sent so far is written. Both engines apply the same versioned
//! migrations (`tandem migrate`).
//! Architecture invariant: this crate knows SQL and files, nothing about HTTP or providers.

mod error;
mod governance;
mod migrate;
mod pg;
mod sqlite;

use std::path::Path;

pub use error::{Error, Result};
pub use governance::{BudgetRow, KeyRow, PolicyVersion};
pub use migrate::MigrationReport;
use tandem_protocol::Usage;

/// Handle to the state database. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(pg::Postgres),
}

/// Calls the same method on whichever engine the store uses.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match &$self.engine {
            Engine::Sqlite(db) => db.$method($($arg),*),
            Engine::Postgres(db) => db.$method($($arg),*),
        }
    };
}

impl Store {
    /// Opens (or creates) `tandem.db` in `dir`, applies pending migrations and starts the writer.
    pub fn open(dir: &Path) -> Result<Store> {
        Ok(Store {
            engine: Engine::Sqlite(sqlite::Sqlite::open(dir)?),
        })
    }

    /// Connects to PostgreSQL with a pool of `pool_size` connections. With `migrate`, pending migrations
    /// are applied first (under an advisory lock, so replicas starting together are safe); without it, a
    /// database that needs migrations is refused.
    pub fn postgres(
        url: &str,
        pool_size: usize,
        migrate: bool,
    ) -> Result<(Store, MigrationReport)> {
        let (db, report) = pg::Postgres::connect(url, pool_size, migrate)?;
        Ok((
            Store {
                engine: Engine::Postgres(db),
            },
            report,
        ))
    }

    /// Applies pending migrations to the SQLite database in `dir` and reports what was done.
    pub fn migrate_sqlite(dir: &Path) -> Result<MigrationReport> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let mut conn = rusqlite::Connection::open(dir.join("tandem.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        sqlite::migrate(&mut conn)
    }

    /// The engine's name: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Queues a record for writing. Never blocks; a full queue drops the record and logs an error.
    pub fn record(&self, record: RequestRecord) {
        dispatch!(self.record(record))
    }

    /// Waits until every record queued before this call is committed.
    pub fn flush(&self) -> Result<()> {
        dispatch!(self.flush())
    }

    /// Whether the database answers (for readiness probes).
    pub fn ping(&self) -> Result<()> {
        dispatch!(self.ping())
    }

    /// The most recent `limit` records, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>> {
        dispatch!(self.recent(limit))
    }

    /// Stores a new key.
    pub fn insert_key(&self, key: &KeyRow) -> Result<()> {
        dispatch!(self.insert_key(key))
    }

    /// The key with this hash, if any (revoked and expired ones included: the caller decides).
    pub fn find_key(&self, hash: &str) -> Result<Option<KeyRow>> {
        dispatch!(self.find_key(hash))
    }

    /// All keys, oldest first.
    pub fn list_keys(&self) -> Result<Vec<KeyRow>> {
        dispatch!(self.list_keys())
    }

    /// Revokes a key by id; returns whether a live key was revoked.
    pub fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool> {
        dispatch!(self.revoke_key(id, now_ms))
    }

    /// Saves settled budget spend (per rule, scope and window). SQLite keeps the given values;
    /// PostgreSQL keeps the larger of the stored and given ones, since every replica saves its view.
    pub fn save_budget_usage(&self, rows: &[BudgetRow]) -> Result<()> {
        dispatch!(self.save_budget_usage(rows))
    }

    /// All stored spend rows.
    pub fn load_budget_usage(&self) -> Result<Vec<BudgetRow>> {
        dispatch!(self.load_budget_usage())
    }

    /// Stores a new version of the Cedar policy; returns its number.
    pub fn save_policy(&self, text: &str, source: &str) -> Result<i64> {
        dispatch!(self.save_policy(text, source))
    }

    /// The newest stored policy version newer than `after` (0 for any), if there is one.
    pub fn policy_after(&self, after: i64) -> Result<Option<PolicyVersion>> {
        dispatch!(self.policy_after(after))
    }
}

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

    pub(crate) fn parse(s: &str) -> Outcome {
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
