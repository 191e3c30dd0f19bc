//! The PostgreSQL implementation, for several replicas sharing one database.
//!
//! tokio-postgres is async, while the store's interface is synchronous like SQLite's (the pipeline
//! calls it from sync code, and lookups are rare thanks to the callers' caches). So the store owns one
//! thread running a current-thread tokio runtime with a deadpool connection pool: each call is a job
//! spawned there, its caller waits for the reply, and request records go to a writer task that inserts
//! them in batches, as the SQLite writer thread does.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tandem_protocol::Usage;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

use crate::governance::{BudgetRow, KeyRow, PolicyVersion};
use crate::migrate::{self, Dialect, MigrationReport};
use crate::sqlite::now_ms;
use crate::{Error, Outcome, RequestRecord, Result};

/// Records waiting for the writer; beyond this the request path drops records with an error log.
const QUEUE: usize = 65_536;
/// Most records written in one transaction.
const BATCH: usize = 512;
/// How long the writer waits after the first record of a batch so that later ones join it.
const LINGER: Duration = Duration::from_millis(20);
/// How long a caller waits for any one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Job = Box<dyn FnOnce(Pool) -> BoxFuture + Send>;

enum Msg {
    Record(Box<RequestRecord>),
    Flush(std_mpsc::SyncSender<Result<()>>),
}

/// Handle to the database thread.
#[derive(Debug)]
pub(crate) struct Postgres {
    jobs: mpsc::UnboundedSender<Job>,
    records: mpsc::Sender<Msg>,
}

impl Postgres {
    /// Connects, applies pending migrations when `migrate` is set (else refuses a schema older than
    /// this build), and starts the database thread.
    pub(crate) fn connect(
        url: &str,
        pool_size: usize,
        migrate: bool,
    ) -> Result<(Postgres, MigrationReport)> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|err| Error::Postgres(format!("invalid postgres_url: {err}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("tandem");
        }
        let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel::<Job>();
        let (records_tx, records_rx) = mpsc::channel::<Msg>(QUEUE);
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<MigrationReport>>(1);
        std::thread::Builder::new()
            .name("tandem-postgres".into())
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
                    let manager = Manager::from_config(
                        config,
                        NoTls,
                        ManagerConfig {
                            recycling_method: RecyclingMethod::Fast,
                        },
                    );
                    let pool = match Pool::builder(manager)
                        .max_size(pool_size)
                        .wait_timeout(Some(Duration::from_secs(10)))
                        .create_timeout(Some(Duration::from_secs(10)))
                        .runtime(deadpool_postgres::Runtime::Tokio1)
                        .build()
                    {
                        Ok(pool) => pool,
                        Err(err) => {
                            let _ = ready_tx.send(Err(Error::Postgres(err.to_string())));
                            return;
                        }
                    };
                    let ready = match migrate {
                        true => run_migrations(&pool).await,
                        false => check_schema(&pool).await,
                    };
                    let ok = ready.is_ok();
                    let _ = ready_tx.send(ready);
                    if !ok {
                        return;
                    }
                    tokio::spawn(writer(pool.clone(), records_rx));
                    while let Some(job) = jobs_rx.recv().await {
                        tokio::spawn(job(pool.clone()));
                    }
                });
            })
            .map_err(|err| Error::Postgres(format!("cannot start the database thread: {err}")))?;
        let report = ready_rx
            .recv()
            .map_err(|_| Error::Postgres("the database thread stopped".into()))??;
        Ok((
            Postgres {
                jobs: jobs_tx,
                records: records_tx,
            },
            report,
        ))
    }

    /// Runs `f` on the database thread and waits for its result.
    fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let job: Job = Box::new(move |pool| {
            Box::pin(async move {
                let _ = tx.send(f(pool).await);
            })
        });
        self.jobs.send(job).map_err(|_| Error::WriterGone)?;
        rx.recv_timeout(CALL_TIMEOUT)
            .map_err(|_| Error::Postgres("no answer from the database in 30 s".into()))?
    }

    /// Queues a record for the writer. Never blocks.
    pub(crate) fn record(&self, record: RequestRecord) {
        match self.records.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::error!(
                    "request record dropped: the postgres writer is {QUEUE} records behind"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("request record dropped: the postgres writer has stopped");
            }
        }
    }

    /// Waits until every record queued before this call is committed.
    pub(crate) fn flush(&self) -> Result<()> {
        let (ack_tx, ack_rx) = std_mpsc::sync_channel(1);
        self.records
            .try_send(Msg::Flush(ack_tx))
            .map_err(|_| Error::WriterGone)?;
        ack_rx
            .recv_timeout(CALL_TIMEOUT)
            .map_err(|_| Error::WriterGone)?
    }

    /// Whether the database answers.
    pub(crate) fn ping(&self) -> Result<()> {
        self.call(|pool| async move {
            client(&pool).await?.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    /// The most recent `limit` records, newest first.
    pub(crate) fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |pool| async move {
            let rows = client(&pool)
                .await?
                .query(
                    "SELECT id, started_at_ms, api, client_model, provider, upstream_model, stream, status, outcome,
                            error, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, usage_exact,
                            latency_ms, ttft_ms, tier, route, dlp, cost
                     FROM requests ORDER BY seq DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| RequestRecord {
                    id: row.get(0),
                    started_at_ms: row.get(1),
                    api: row.get(2),
                    client_model: row.get(3),
                    provider: row.get(4),
                    upstream_model: row.get(5),
                    stream: row.get(6),
                    status: u16::try_from(row.get::<_, i32>(7)).unwrap_or(0),
                    outcome: Outcome::parse(row.get(8)),
                    error: row.get(9),
                    usage: Usage {
                        input_tokens: unsigned(row.get(10)),
                        output_tokens: unsigned(row.get(11)),
                        cached_input_tokens: unsigned(row.get(12)),
                        reasoning_tokens: unsigned(row.get(13)),
                    },
                    usage_exact: row.get(14),
                    latency_ms: unsigned(row.get(15)),
                    ttft_ms: row.get::<_, Option<i64>>(16).map(unsigned),
                    tier: row.get(17),
                    route: row.get(18),
                    dlp: row.get(19),
                    cost: row.get(20),
                })
                .collect())
        })
    }

    /// Stores a new key.
    pub(crate) fn insert_key(&self, key: &KeyRow) -> Result<()> {
        let key = key.clone();
        self.call(move |pool| async move {
            client(&pool)
                .await?
                .execute(
                    "INSERT INTO api_keys (id, hash, \"user\", team, project, created_at_ms, expires_at_ms, revoked_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &key.id,
                        &key.hash,
                        &key.user,
                        &key.team,
                        &key.project,
                        &key.created_at_ms,
                        &key.expires_at_ms,
                        &key.revoked_at_ms,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    /// The key with this hash, if any.
    pub(crate) fn find_key(&self, hash: &str) -> Result<Option<KeyRow>> {
        let hash = hash.to_owned();
        self.call(move |pool| async move {
            let row = client(&pool)
                .await?
                .query_opt(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"),
                    &[&hash],
                )
                .await?;
            Ok(row.as_ref().map(key_row))
        })
    }

    /// All keys, oldest first.
    pub(crate) fn list_keys(&self) -> Result<Vec<KeyRow>> {
        self.call(|pool| async move {
            let rows = client(&pool)
                .await?
                .query(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(key_row).collect())
        })
    }

    /// Revokes a live key; whether one was revoked.
    pub(crate) fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool> {
        let id = id.to_owned();
        self.call(move |pool| async move {
            let n = client(&pool)
                .await?
                .execute(
                    "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
                    &[&id, &now_ms],
                )
                .await?;
            Ok(n > 0)
        })
    }

    /// Raises the stored spend rows to `rows` (never lowers them: several replicas save their view).
    pub(crate) fn save_budget_usage(&self, rows: &[BudgetRow]) -> Result<()> {
        let rows = rows.to_vec();
        self.call(move |pool| async move {
            let mut client = client(&pool).await?;
            let tx = client.transaction().await?;
            let stmt = tx
                .prepare(
                    "INSERT INTO budget_usage (rule, scope, window_start_ms, tokens, cost_nanos, requests)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (rule, scope, window_start_ms) DO UPDATE SET
                        tokens = GREATEST(budget_usage.tokens, excluded.tokens),
                        cost_nanos = GREATEST(budget_usage.cost_nanos, excluded.cost_nanos),
                        requests = GREATEST(budget_usage.requests, excluded.requests)",
                )
                .await?;
            for r in &rows {
                tx.execute(
                    &stmt,
                    &[
                        &r.rule,
                        &r.scope,
                        &r.window_start_ms,
                        &signed(r.tokens),
                        &signed(r.cost_nanos),
                        &signed(r.requests),
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// All stored spend rows.
    pub(crate) fn load_budget_usage(&self) -> Result<Vec<BudgetRow>> {
        self.call(|pool| async move {
            let rows = client(&pool)
                .await?
                .query(
                    "SELECT rule, scope, window_start_ms, tokens, cost_nanos, requests FROM budget_usage",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| BudgetRow {
                    rule: row.get(0),
                    scope: row.get(1),
                    window_start_ms: row.get(2),
                    tokens: unsigned(row.get(3)),
                    cost_nanos: unsigned(row.get(4)),
                    requests: unsigned(row.get(5)),
                })
                .collect())
        })
    }

    /// Stores a new policy version; returns its number.
    pub(crate) fn save_policy(&self, text: &str, source: &str) -> Result<i64> {
        let (text, source) = (text.to_owned(), source.to_owned());
        self.call(move |pool| async move {
            let row = client(&pool)
                .await?
                .query_one(
                    "INSERT INTO policy_versions (text, source, created_at_ms) VALUES ($1, $2, $3) RETURNING version",
                    &[&text, &source, &now_ms()],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    /// The newest policy version newer than `after`, if any.
    pub(crate) fn policy_after(&self, after: i64) -> Result<Option<PolicyVersion>> {
        self.call(move |pool| async move {
            let row = client(&pool)
                .await?
                .query_opt(
                    "SELECT version, text, source, created_at_ms FROM policy_versions
                     WHERE version > $1 ORDER BY version DESC LIMIT 1",
                    &[&after],
                )
                .await?;
            Ok(row.map(|row| PolicyVersion {
                version: row.get(0),
                text: row.get(1),
                source: row.get(2),
                created_at_ms: row.get(3),
            }))
        })
    }
}

const KEY_COLUMNS: &str =
    "id, hash, \"user\", team, project, created_at_ms, expires_at_ms, revoked_at_ms";

fn key_row(row: &tokio_postgres::Row) -> KeyRow {
    KeyRow {
        id: row.get(0),
        hash: row.get(1),
        user: row.get(2),
        team: row.get(3),
        project: row.get(4),
        created_at_ms: row.get(5),
        expires_at_ms: row.get(6),
        revoked_at_ms: row.get(7),
    }
}

async fn client(pool: &Pool) -> Result<deadpool_postgres::Object> {
    pool.get()
        .await
        .map_err(|err| Error::Postgres(format!("no connection: {err}")))
}

/// Applies pending migrations under the advisory lock.
async fn run_migrations(pool: &Pool) -> Result<MigrationReport> {
    let mut client = client(pool).await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migrate::PG_LOCK])
        .await?;
    // `CREATE … IF NOT EXISTS` notices are not worth a log line each.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    tx.batch_execute(migrate::BOOKKEEPING).await?;
    let from: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM tandem_migrations",
            &[],
        )
        .await?
        .get(0);
    let mut applied = Vec::new();
    for m in migrate::pending(from)? {
        tx.batch_execute(m.script(Dialect::Postgres)).await?;
        tx.execute(
            "INSERT INTO tandem_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now_ms()],
        )
        .await?;
        applied.push(format!("{} {}", m.version, m.name));
    }
    tx.commit().await?;
    Ok(MigrationReport {
        engine: "postgres",
        from,
        to: migrate::latest().max(from),
        applied,
    })
}

/// Refuses a database whose schema is not exactly this build's (run `tandem migrate`).
async fn check_schema(pool: &Pool) -> Result<MigrationReport> {
    let client = client(pool).await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('tandem_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    let version: i64 = match exists {
        true => client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM tandem_migrations",
                &[],
            )
            .await?
            .get(0),
        false => 0,
    };
    if !migrate::pending(version)?.is_empty() {
        return Err(Error::SchemaBehind {
            found: version,
            known: migrate::latest(),
        });
    }
    Ok(MigrationReport {
        engine: "postgres",
        from: version,
        to: version,
        applied: Vec::new(),
    })
}

async fn writer(pool: Pool, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Box<RequestRecord>> = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        if matches!(first, Msg::Record(_)) {
            tokio::time::sleep(LINGER).await;
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
        let result = insert(&pool, &batch).await;
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

async fn insert(pool: &Pool, batch: &[Box<RequestRecord>]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut client = client(pool).await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare(
            "INSERT INTO requests (id, started_at_ms, api, client_model, provider, upstream_model,
                stream, status, outcome, error, input_tokens, output_tokens, cached_input_tokens,
                reasoning_tokens, usage_exact, latency_ms, ttft_ms, tier, route, dlp, cost)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    // Sent together: tokio-postgres pipelines the statements of one connection.
    let inserts = batch.iter().map(|r| {
        let status = i32::from(r.status);
        let ttft = r.ttft_ms.map(signed);
        let values = (
            signed(r.usage.input_tokens),
            signed(r.usage.output_tokens),
            signed(r.usage.cached_input_tokens),
            signed(r.usage.reasoning_tokens),
            signed(r.latency_ms),
        );
        let tx = &tx;
        let stmt = &stmt;
        async move {
            tx.execute(
                stmt,
                &[
                    &r.id,
                    &r.started_at_ms,
                    &r.api,
                    &r.client_model,
                    &r.provider,
                    &r.upstream_model,
                    &r.stream,
                    &status,
                    &r.outcome.as_str(),
                    &r.error,
                    &values.0,
                    &values.1,
                    &values.2,
                    &values.3,
                    &r.usage_exact,
                    &values.4,
                    &ttft,
                    &r.tier,
                    &r.route,
                    &r.dlp,
                    &r.cost,
                ],
            )
            .await
        }
    });
    futures::future::try_join_all(inserts).await?;
    tx.commit().await?;
    Ok(())
}

/// A counter as PostgreSQL's `BIGINT`.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `BIGINT` counter back; negative values (never written) read as 0.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
