//! The ledger in PostgreSQL, appended to by several replicas through one sequencer.
//!
//! Each replica sends its appends to one writer task, which commits whatever has queued up as one
//! transaction (group commit): it takes a transaction-scoped advisory lock, the ledger's single
//! sequencer across all replicas, reads the size and the tree's right edge, seals each entry with the
//! next index and the previous leaf's hash, stores the entries, the tree's new stored hashes and a signed
//! checkpoint, and commits. An append returns only after that commit, so an entry is durable before the
//! answer it records ends, and a replica killed at any moment leaves either a committed, covered entry
//! or none. The schema is the SQLite ledger's, with `audit_` table names, created by the first replica.
//!
//! tokio-postgres is async and the ledger's interface is not, so the writer runs on a thread of its own
//! with a current-thread runtime; appenders wait on a reply channel.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tlog_tiles::{Hash, record_hash, stored_hash_index};
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};

use crate::entry::{Entry, seal};
use crate::key::LedgerKey;
use crate::ledger::{Content, Options, now_ms, sign_checkpoint};
use crate::tree::Frontier;
use crate::{Error, Result};

/// The advisory lock of the sequencer (`audit` in ASCII); schema creation takes it too.
const LOCK: i64 = 0x61_75_64_69_74;
/// Most entries sealed in one transaction.
const BATCH: usize = 1024;
/// How long an appender waits for its commit.
const DEADLINE: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
SET LOCAL client_min_messages = warning;
CREATE TABLE IF NOT EXISTS audit_entries (
    idx BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    principal TEXT NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_entries_ts ON audit_entries(ts_ms);
CREATE INDEX IF NOT EXISTS audit_entries_principal ON audit_entries(principal, ts_ms);
CREATE TABLE IF NOT EXISTS audit_hashes (
    id BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_content (
    idx BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL
);
";

/// An entry waiting for its commit.
struct Append {
    json: Vec<u8>,
    kind: &'static str,
    principal: String,
    content: Option<Content>,
    reply: std_mpsc::SyncSender<Result<u64>>,
}

enum Op {
    Append(Box<Append>),
    Size(std_mpsc::SyncSender<Result<u64>>),
    Purge(Duration, std_mpsc::SyncSender<Result<u64>>),
}

/// Handle to the writer thread.
#[derive(Debug)]
pub(crate) struct PgLedger {
    key: LedgerKey,
    options: Options,
    ops: mpsc::UnboundedSender<Op>,
}

impl PgLedger {
    /// Connects, creates the tables if needed, checks that the database's ledger is signed by `key`
    /// (claiming it for `key` when new), and starts the writer.
    pub(crate) fn open(url: &str, key: LedgerKey, options: Options) -> Result<PgLedger> {
        let config = pg_config(url)?;
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<()>>(1);
        let writer_key = key.clone();
        let writer_options = options.clone();
        std::thread::Builder::new()
            .name("tandem-audit-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(Error::Postgres(format!("runtime: {err}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut writer = Writer {
                        config,
                        client: None,
                        key: writer_key,
                        options: writer_options,
                    };
                    let ready = writer.prepare().await;
                    let ok = ready.is_ok();
                    let _ = ready_tx.send(ready);
                    if ok {
                        writer.run(ops_rx).await;
                    }
                });
            })
            .map_err(|err| Error::Postgres(format!("cannot start the ledger writer: {err}")))?;
        ready_rx.recv().map_err(|_| Error::WriterGone)??;
        Ok(PgLedger {
            key,
            options,
            ops: ops_tx,
        })
    }

    pub(crate) fn key(&self) -> &LedgerKey {
        &self.key
    }

    pub(crate) fn captures(&self) -> bool {
        self.options.capture
    }

    /// Seals and commits `entry`; returns its index once the commit is done.
    pub(crate) fn append(&self, entry: &Entry, content: Option<Content>) -> Result<u64> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.ops
            .send(Op::Append(Box::new(Append {
                json: serde_json::to_vec(entry)?,
                kind: entry.kind(),
                principal: entry.principal().user.clone(),
                content: if self.options.capture { content } else { None },
                reply,
            })))
            .map_err(|_| Error::WriterGone)?;
        wait(&answer)
    }

    /// The number of committed entries (every commit is checkpointed, so this is also a flush).
    pub(crate) fn size(&self) -> Result<u64> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.ops
            .send(Op::Size(reply))
            .map_err(|_| Error::WriterGone)?;
        wait(&answer)
    }

    /// Deletes captured content older than `age`.
    pub(crate) fn purge_content(&self, age: Duration) -> Result<u64> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.ops
            .send(Op::Purge(age, reply))
            .map_err(|_| Error::WriterGone)?;
        wait(&answer)
    }
}

fn wait(answer: &std_mpsc::Receiver<Result<u64>>) -> Result<u64> {
    answer
        .recv_timeout(DEADLINE)
        .map_err(|_| Error::Postgres("the ledger database did not answer in 30 s".into()))?
}

fn pg_config(url: &str) -> Result<tokio_postgres::Config> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|err| Error::Postgres(format!("invalid postgres_url: {err}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.application_name("tandem-audit");
    Ok(config)
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "audit ledger database connection closed");
        }
    });
    Ok(client)
}

struct Writer {
    config: tokio_postgres::Config,
    /// Reconnected on the next operation after a failure.
    client: Option<Client>,
    key: LedgerKey,
    options: Options,
}

impl Writer {
    async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.config).await?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::Postgres("no connection".into()))
    }

    /// Creates the tables and claims or checks the ledger's key.
    async fn prepare(&mut self) -> Result<()> {
        let vkey = self.key.vkey().to_owned();
        let client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.execute(
            "INSERT INTO audit_meta (name, value) VALUES ('vkey', $1) ON CONFLICT (name) DO NOTHING",
            &[&vkey],
        )
        .await?;
        let stored: String = tx
            .query_one("SELECT value FROM audit_meta WHERE name = 'vkey'", &[])
            .await?
            .get(0);
        tx.commit().await?;
        if stored != vkey {
            return Err(Error::Invalid(format!(
                "the audit ledger in this database is signed by {stored}, not by this replica's key {vkey}: \
                 give every replica the same ledger.key"
            )));
        }
        Ok(())
    }

    async fn run(&mut self, mut ops: mpsc::UnboundedReceiver<Op>) {
        let mut batch: Vec<Append> = Vec::with_capacity(BATCH);
        while let Some(op) = ops.recv().await {
            let mut next = Some(op);
            while let Some(op) = next.take() {
                match op {
                    Op::Append(append) => {
                        batch.push(*append);
                        if batch.len() < BATCH {
                            next = ops.try_recv().ok();
                        }
                    }
                    Op::Size(reply) => {
                        self.commit_batch(&mut batch).await;
                        let _ = reply.send(self.size().await);
                    }
                    Op::Purge(age, reply) => {
                        self.commit_batch(&mut batch).await;
                        let _ = reply.send(self.purge(age).await);
                    }
                }
            }
            self.commit_batch(&mut batch).await;
        }
    }

    /// Commits `batch` and answers each appender; on failure every appender gets the error and the
    /// connection is dropped, to be made anew.
    async fn commit_batch(&mut self, batch: &mut Vec<Append>) {
        if batch.is_empty() {
            return;
        }
        match self.commit(batch).await {
            Ok(first) => {
                for (i, append) in batch.drain(..).enumerate() {
                    let _ = append.reply.send(Ok(first + i as u64));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, entries = batch.len(), "committing audit entries failed");
                self.client = None;
                for append in batch.drain(..) {
                    let _ = append.reply.send(Err(Error::Postgres(err.to_string())));
                }
            }
        }
    }

    /// Seals and stores `batch` under the sequencer's lock; returns the first index.
    async fn commit(&mut self, batch: &mut [Append]) -> Result<u64> {
        let key = self.key.clone();
        let every = self.options.checkpoint_every;
        let client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await?;
        let max: Option<i64> = tx
            .query_one("SELECT MAX(idx) FROM audit_entries", &[])
            .await?
            .get(0);
        let size = max.map_or(0, |m| u64::try_from(m).unwrap_or(0) + 1);
        let mut wanted = Frontier::ids(size);
        if size > 0 {
            wanted.push(stored_hash_index(0, size - 1));
        }
        let wanted_db: Vec<i64> = wanted.iter().map(|&id| signed(id)).collect();
        let rows = tx
            .query(
                "SELECT id, hash FROM audit_hashes WHERE id = ANY($1)",
                &[&wanted_db],
            )
            .await?;
        let mut known = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            let bytes: Vec<u8> = row.get(1);
            let hash = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| Error::Invalid(format!("stored hash {id} is not 32 bytes")))?;
            known.insert(u64::try_from(id).unwrap_or(0), Hash(hash));
        }
        let read = |ids: &[u64]| -> Result<Vec<Hash>> {
            ids.iter()
                .map(|id| {
                    known
                        .get(id)
                        .copied()
                        .ok_or_else(|| Error::NotFound(format!("stored hash {id} is missing")))
                })
                .collect()
        };
        let mut frontier = Frontier::load(size, read)?;
        let mut prev = match size {
            0 => [0u8; 32],
            _ => read(&[stored_hash_index(0, size - 1)])?
                .first()
                .map_or([0u8; 32], |h| h.0),
        };
        let insert_entry = tx
            .prepare("INSERT INTO audit_entries (idx, ts_ms, kind, principal, body) VALUES ($1, $2, $3, $4, $5)")
            .await?;
        let insert_hash = tx
            .prepare("INSERT INTO audit_hashes (id, hash) VALUES ($1, $2)")
            .await?;
        let insert_content = tx
            .prepare(
                "INSERT INTO audit_content (idx, ts_ms, prompt, answer) VALUES ($1, $2, $3, $4)",
            )
            .await?;
        let mut hashes: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut entries = Vec::with_capacity(batch.len());
        for (i, append) in batch.iter().enumerate() {
            let idx = size + i as u64;
            let ts = now_ms();
            let mut body = Vec::with_capacity(append.json.len() + 96);
            seal(idx, &prev, ts, &append.json, &mut body);
            let leaf = record_hash(&body);
            frontier.push(leaf, |id, hash| hashes.push((signed(id), hash.0.to_vec())));
            prev = leaf.0;
            entries.push((signed(idx), ts, body));
        }
        // Sent together: tokio-postgres pipelines the statements of one connection.
        let (tx_ref, insert_entry, insert_hash) = (&tx, &insert_entry, &insert_hash);
        let entry_writes =
            entries
                .iter()
                .zip(batch.iter())
                .map(|((idx, ts, body), append)| async move {
                    tx_ref
                        .execute(
                            insert_entry,
                            &[idx, ts, &append.kind, &append.principal, body],
                        )
                        .await
                });
        futures::future::try_join_all(entry_writes).await?;
        let hash_writes = hashes
            .iter()
            .map(|(id, hash)| async move { tx_ref.execute(insert_hash, &[id, hash]).await });
        futures::future::try_join_all(hash_writes).await?;
        let new_size = frontier.size();
        let note = sign_checkpoint(&key, new_size, frontier.root())?;
        tx.execute(
            "INSERT INTO audit_checkpoints (size, ts_ms, note) VALUES ($1, $2, $3)",
            &[&signed(new_size), &now_ms(), &note],
        )
        .await?;
        // Keep one checkpoint per `checkpoint_every` entries plus the newest, as the file ledger does.
        let older: Vec<i64> = tx
            .query(
                "SELECT size FROM audit_checkpoints WHERE size < $1 ORDER BY size DESC LIMIT 2",
                &[&signed(new_size)],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if let [previous, ..] = older[..] {
            let far_enough = older
                .get(1)
                .is_none_or(|&kept| u64::try_from(previous - kept).unwrap_or(0) >= every);
            if !far_enough {
                tx.execute(
                    "DELETE FROM audit_checkpoints WHERE size = $1",
                    &[&previous],
                )
                .await?;
            }
        }
        for ((idx, ts, _), append) in entries.iter().zip(batch.iter()) {
            if let Some(content) = &append.content {
                tx.execute(
                    &insert_content,
                    &[idx, ts, &content.prompt, &content.answer],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(size)
    }

    async fn size(&mut self) -> Result<u64> {
        let max: Option<i64> = self
            .client()
            .await?
            .query_one("SELECT MAX(idx) FROM audit_entries", &[])
            .await?
            .get(0);
        Ok(max.map_or(0, |m| u64::try_from(m).unwrap_or(0) + 1))
    }

    async fn purge(&mut self, age: Duration) -> Result<u64> {
        let cutoff = now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let removed = self
            .client()
            .await?
            .execute("DELETE FROM audit_content WHERE ts_ms < $1", &[&cutoff])
            .await?;
        Ok(removed)
    }
}

/// The rows of a ledger, for a local copy.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// `(idx, ts_ms, kind, principal, body)`.
    pub(crate) entries: Vec<(i64, i64, String, String, Vec<u8>)>,
    /// `(id, hash)`.
    pub(crate) hashes: Vec<(i64, Vec<u8>)>,
    /// `(size, ts_ms, note)`.
    pub(crate) checkpoints: Vec<(i64, i64, String)>,
}

/// Reads the whole ledger in one repeatable-read transaction, with the verifier key it is claimed by.
pub(crate) fn snapshot(url: &str) -> Result<(Rows, Option<String>)> {
    let config = pg_config(url)?;
    // On a thread of its own, runtime included: the caller may be inside an async runtime already.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| Error::Postgres(format!("runtime: {err}")))?
                    .block_on(read_all(&config))
            })
            .join()
            .map_err(|_| Error::Postgres("the snapshot thread panicked".into()))?
    })
}

async fn read_all(config: &tokio_postgres::Config) -> Result<(Rows, Option<String>)> {
    let mut client = connect(config).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('audit_entries') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok((Rows::default(), None));
    }
    let vkey = tx
        .query_opt("SELECT value FROM audit_meta WHERE name = 'vkey'", &[])
        .await?
        .map(|row| row.get(0));
    let entries = tx
        .query(
            "SELECT idx, ts_ms, kind, principal, body FROM audit_entries ORDER BY idx",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let hashes = tx
        .query("SELECT id, hash FROM audit_hashes ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let checkpoints = tx
        .query(
            "SELECT size, ts_ms, note FROM audit_checkpoints ORDER BY size",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    tx.commit().await?;
    Ok((
        Rows {
            entries,
            hashes,
            checkpoints,
        },
        vkey,
    ))
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
