//! The SQLite implementation: schema, the batching writer thread, and read queries.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;

use rusqlite::{Connection, params};
use tandem_protocol::Usage;

use crate::migrate::{self, Dialect};
use crate::{Error, Outcome, RequestRecord, Result};

/// Records waiting for the writer; beyond this the request path drops records with a warning rather than block.
const QUEUE: usize = 65_536;
/// Most records written in one transaction.
const BATCH: usize = 512;
/// How long the writer waits after the first record of a batch so that later ones join the same transaction.
/// It sleeps rather than blocking on the channel, so sends on the request path wake nobody meanwhile.
/// One transaction per request cost about a quarter of the gateway's CPU under sequential load.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Columns added to `requests` before migrations were versioned, for databases created before them.
fn legacy_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('requests')")?;
    let columns = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !columns.iter().any(|c| c == "dlp") {
        conn.execute_batch("ALTER TABLE requests ADD COLUMN dlp TEXT")?;
    }
    if !columns.iter().any(|c| c == "cost") {
        conn.execute_batch("ALTER TABLE requests ADD COLUMN cost REAL NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

/// Applies the pending migrations in one `IMMEDIATE` transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<migrate::MigrationReport> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(migrate::BOOKKEEPING)?;
    let from: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM tandem_migrations",
        [],
        |row| row.get(0),
    )?;
    let mut applied = Vec::new();
    for m in migrate::pending(from)? {
        tx.execute_batch(m.script(Dialect::Sqlite))?;
        if m.version == 1 {
            legacy_columns(&tx)?;
        }
        tx.execute(
            "INSERT INTO tandem_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, now_ms()],
        )?;
        applied.push(format!("{} {}", m.version, m.name));
    }
    tx.commit()?;
    Ok(migrate::MigrationReport {
        engine: "sqlite",
        from,
        to: migrate::latest().max(from),
        applied,
    })
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

enum Msg {
    Record(Box<RequestRecord>),
    Flush(SyncSender<Result<()>>),
}

/// The embedded database: SQLite in WAL mode.
#[derive(Debug)]
pub(crate) struct Sqlite {
    path: PathBuf,
    tx: SyncSender<Msg>,
    /// Idle read connections, reused so per-request lookups (API keys) skip opening the file.
    readers: std::sync::Mutex<Vec<Connection>>,
}

impl Sqlite {
    /// Open (or create) `tandem.db` in `dir`, apply the schema and start the writer thread.
    pub(crate) fn open(dir: &Path) -> Result<Sqlite> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("tandem.db");
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let report = migrate(&mut conn)?;
        if !report.applied.is_empty() {
            tracing::info!(from = report.from, to = report.to, path = %path.display(), "sqlite schema migrated");
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        thread::Builder::new()
            .name("tandem-store-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|source| Error::Dir {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Sqlite {
            path,
            tx,
            readers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Queue a record for writing. Never blocks; a full queue drops the record and logs an error.
    pub(crate) fn record(&self, record: RequestRecord) {
        match self.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::error!(
                    "request record dropped: the store writer is {QUEUE} records behind"
                );
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("request record dropped: the store writer has stopped");
            }
        }
    }

    /// Wait until every record queued before this call is committed.
    pub(crate) fn flush(&self) -> Result<()> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.tx
            .send(Msg::Flush(ack_tx))
            .map_err(|_| Error::WriterGone)?;
        ack_rx.recv().map_err(|_| Error::WriterGone)?
    }

    /// Whether the database answers a trivial query (for readiness probes).
    pub(crate) fn ping(&self) -> Result<()> {
        let conn = self.reader()?;
        conn.query_row("SELECT count(*) FROM requests", [], |row| {
            row.get::<_, i64>(0)
        })?;
        Ok(())
    }

    /// The most recent `limit` records, newest first.
    pub(crate) fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, started_at_ms, api, client_model, provider, upstream_model, stream, status, outcome,
                    error, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, usage_exact,
                    latency_ms, ttft_ms, tier, route, dlp, cost
             FROM requests ORDER BY seq DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], |row| {
            Ok(RequestRecord {
                id: row.get(0)?,
                started_at_ms: row.get(1)?,
                api: row.get(2)?,
                client_model: row.get(3)?,
                provider: row.get(4)?,
                upstream_model: row.get(5)?,
                stream: row.get(6)?,
                status: row.get(7)?,
                outcome: Outcome::parse(&row.get::<_, String>(8)?),
                error: row.get(9)?,
                usage: Usage {
                    input_tokens: row.get(10)?,
                    output_tokens: row.get(11)?,
                    cached_input_tokens: row.get(12)?,
                    reasoning_tokens: row.get(13)?,
                },
                usage_exact: row.get(14)?,
                latency_ms: row.get(15)?,
                ttft_ms: row.get(16)?,
                tier: row.get(17)?,
                route: row.get(18)?,
                dlp: row.get(19)?,
                cost: row.get(20)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::from)
    }

    fn reader(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Run `f` on a pooled connection (opened on first use, returned to the pool afterwards).
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.reader()?,
        };
        let result = f(&conn).map_err(Error::from);
        let mut pool = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }
}

fn writer(mut conn: Connection, rx: Receiver<Msg>) {
    let mut batch: Vec<Box<RequestRecord>> = Vec::with_capacity(BATCH);
    let mut acks: Vec<SyncSender<Result<()>>> = Vec::new();
    while let Ok(first) = rx.recv() {
        if matches!(first, Msg::Record(_)) {
            thread::sleep(LINGER);
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(record) => batch.push(record),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let result = insert(&mut conn, &batch);
        if let Err(err) = &result {
            tracing::error!(error = %err, records = batch.len(), "writing request records failed");
        }
        batch.clear();
        for ack in acks.drain(..) {
            let reply = match &result {
                Ok(()) => Ok(()),
                Err(err) => Err(Error::Write(err.to_string())),
            };
            let _ = ack.send(reply);
        }
    }
}

fn insert(conn: &mut Connection, batch: &[Box<RequestRecord>]) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO requests (id, started_at_ms, api, client_model, provider, upstream_model,
                stream, status, outcome, error, input_tokens, output_tokens, cached_input_tokens,
                reasoning_tokens, usage_exact, latency_ms, ttft_ms, tier, route, dlp, cost)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.id,
                r.started_at_ms,
                r.api,
                r.client_model,
                r.provider,
                r.upstream_model,
                r.stream,
                r.status,
                r.outcome.as_str(),
                r.error,
                r.usage.input_tokens,
                r.usage.output_tokens,
                r.usage.cached_input_tokens,
                r.usage.reasoning_tokens,
                r.usage_exact,
                r.latency_ms,
                r.ttft_ms,
                r.tier,
                r.route,
                r.dlp,
                r.cost,
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use tandem_protocol::Usage;

    use crate::{Outcome, RequestRecord, Store};

    fn record(id: &str) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            started_at_ms: 1,
            api: "chat".into(),
            client_model: "m".into(),
            provider: "p".into(),
            upstream_model: "u".into(),
            stream: true,
            status: 200,
            outcome: Outcome::Ok,
            error: None,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_input_tokens: 1,
                reasoning_tokens: 0,
            },
            usage_exact: true,
            latency_ms: 5,
            ttft_ms: Some(2),
            tier: Some("live".into()),
            route: Some("{}".into()),
            dlp: None,
            cost: 0.25,
        }
    }

    #[test]
    fn records_survive_flush_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..1000 {
            store.record(record(&format!("r{i}")));
        }
        store.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let recent = store.recent(2).unwrap();
        assert_eq!(recent, vec![record("r999"), record("r998")]);
        store.ping().unwrap();
    }
}
