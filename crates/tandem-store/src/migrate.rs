//! Versioned schema migrations for both engines, applied in order and recorded in `tandem_migrations`.
//!
//! Each migration has one script per engine and the same version number in both, so `tandem migrate`
//! reports the same state whatever the engine. On PostgreSQL the whole run holds a transaction-scoped
//! advisory lock, so replicas starting together apply each migration once; on SQLite the run is one
//! `IMMEDIATE` transaction. Written here rather than with refinery: the runner is forty lines, and it
//! needs that lock, which refinery does not take.

/// The SQL dialect a migration script is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The embedded database.
    Sqlite,
    /// Shared by several replicas.
    Postgres,
}

/// One schema change.
pub(crate) struct Migration {
    /// Applied in increasing order; never reused.
    pub(crate) version: i64,
    /// What it does, for `tandem migrate`.
    pub(crate) name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    /// The script for `dialect`.
    pub(crate) fn script(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// Creates the bookkeeping table (the same text works on both engines).
pub(crate) const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS tandem_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// The advisory lock key that serialises migration runs on PostgreSQL (`tandem` in ASCII).
pub(crate) const PG_LOCK: i64 = 0x74_61_6e_64_65_6d;

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "requests, api_keys, budget_usage",
        sqlite: "
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    started_at_ms INTEGER NOT NULL,
    api TEXT NOT NULL,
    client_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    usage_exact INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    ttft_ms INTEGER,
    tier TEXT,
    route TEXT,
    dlp TEXT,
    cost REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_started ON requests(started_at_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    user TEXT NOT NULL,
    team TEXT,
    project TEXT,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    revoked_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS budget_usage (
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (rule, scope, window_start_ms)
);",
        postgres: "
CREATE TABLE IF NOT EXISTS requests (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    started_at_ms BIGINT NOT NULL,
    api TEXT NOT NULL,
    client_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    stream BOOLEAN NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    usage_exact BOOLEAN NOT NULL,
    latency_ms BIGINT NOT NULL,
    ttft_ms BIGINT,
    tier TEXT,
    route TEXT,
    dlp TEXT,
    cost DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_started ON requests(started_at_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    \"user\" TEXT NOT NULL,
    team TEXT,
    project TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT
);
CREATE TABLE IF NOT EXISTS budget_usage (
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (rule, scope, window_start_ms)
);",
    },
    Migration {
        version: 2,
        name: "policy_versions",
        sqlite: "
CREATE TABLE IF NOT EXISTS policy_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);",
        postgres: "
CREATE TABLE IF NOT EXISTS policy_versions (
    version BIGSERIAL PRIMARY KEY,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);",
    },
];

/// The newest version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What a migration run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The engine: `sqlite` or `postgres`.
    pub engine: &'static str,
    /// The schema version before the run.
    pub from: i64,
    /// The schema version after it.
    pub to: i64,
    /// The migrations applied, as `version name`.
    pub applied: Vec<String>,
}

/// The migrations after `current`, refusing a database newer than this build.
pub(crate) fn pending(current: i64) -> crate::Result<&'static [Migration]> {
    if current > latest() {
        return Err(crate::Error::SchemaTooNew {
            found: current,
            known: latest(),
        });
    }
    let first = MIGRATIONS
        .iter()
        .position(|m| m.version > current)
        .unwrap_or(MIGRATIONS.len());
    Ok(&MIGRATIONS[first..])
}
