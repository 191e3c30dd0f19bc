//! The writing side: [`FileLedger::append`] seals an entry and journals it on the caller's thread; one
//! writer thread commits journalled entries to SQLite in batches, extends the Merkle tree and signs
//! a checkpoint in the same transaction, so every committed entry is covered by a signed checkpoint.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};
use tlog_tiles::{Checkpoint, Hash, record_hash, stored_hash_index};

use crate::entry::{Entry, seal};
use crate::error::io;
use crate::journal::{self, Segment};
use crate::key::LedgerKey;
use crate::tree::Frontier;
use crate::{Error, Result, db};

/// Most entries committed in one transaction.
const BATCH: usize = 4096;
/// How long the writer waits after the first entry of a batch so that later ones join the same
/// transaction and checkpoint: at low rates a commit and a signature per entry would cost more CPU
/// than the request itself. It parks rather than blocking on the channel, so appends meanwhile wake
/// nobody (a futex wake on every append was most of their cost); [`FileLedger::flush`] unparks it.
/// Entries are durable in the journal already; only sealing waits.
const LINGER: Duration = Duration::from_millis(100);

/// How the ledger is kept.
#[derive(Clone, Debug)]
pub struct Options {
    /// Key name and checkpoint origin for a new ledger (no spaces or `+`).
    pub name: String,
    /// Checkpoints are signed after every commit; of these, one per this many entries is kept (the
    /// newest is always kept). Verification checks each kept checkpoint.
    pub checkpoint_every: u64,
    /// A journal segment is closed when it grows past this many bytes.
    pub segment_bytes: u64,
    /// `fdatasync` the journal on every append: survives power loss, not only a killed process, at
    /// the cost of a disk flush per entry.
    pub fsync: bool,
    /// Store prompt and answer text in the separate content store.
    pub capture: bool,
    /// How long captured content is kept; `None` keeps it until purged by hand.
    pub retention: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "tandem/audit".to_owned(),
            checkpoint_every: 1024,
            segment_bytes: 16 << 20,
            fsync: false,
            capture: false,
            retention: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

/// Prompt and answer text for the content store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// The request as forwarded.
    pub prompt: String,
    /// The answer as sent.
    pub answer: String,
}

/// A sealed entry on its way to the database.
struct Pending {
    idx: u64,
    ts: i64,
    kind: &'static str,
    principal: String,
    leaf: Hash,
    body: Vec<u8>,
    content: Option<Content>,
}

enum Msg {
    Entry(Box<Pending>),
    /// A journal segment was closed; it holds entries below `end`.
    Rotated {
        closed: PathBuf,
        end: u64,
    },
    /// Reply with the committed size once everything sent before is committed.
    Flush(SyncSender<Result<u64>>),
}

/// The sequencer: hands out indexes in journal order.
struct Sequencer {
    next: u64,
    prev: [u8; 32],
    segment: Segment,
    frame: Vec<u8>,
    tx: Sender<Msg>,
}

/// The append side of a ledger kept in files: a journal and SQLite. One per ledger directory (a lock
/// file enforces it).
pub(crate) struct FileLedger {
    dir: PathBuf,
    key: LedgerKey,
    options: Options,
    seq: Mutex<Option<Sequencer>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

impl std::fmt::Debug for FileLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLedger")
            .field("dir", &self.dir)
            .field("vkey", &self.key.vkey())
            .finish_non_exhaustive()
    }
}

impl FileLedger {
    /// Opens the ledger in `dir` (creating it and its key), seals whatever the journal holds from
    /// before a crash, and starts the writer thread.
    pub(crate) fn open(dir: &Path, options: Options) -> Result<FileLedger> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(io("create", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        let key = LedgerKey::load_or_create(&dir.join("ledger.key"), &options.name)?;
        let pub_path = dir.join("ledger.pub");
        if !pub_path.exists() {
            std::fs::write(&pub_path, format!("{}\n", key.vkey()))
                .map_err(io("write", &pub_path))?;
        }
        let mut conn = db::open_rw(&dir.join("ledger.db"))?;
        let content = if options.capture {
            Some(db::open_content(&dir.join("content.db"))?)
        } else {
            None
        };
        let size = db::size(&conn)?;
        let frontier = Frontier::load(size, |ids| db::read_hashes(&conn, ids))?;
        let prev = if size == 0 {
            [0u8; 32]
        } else {
            db::read_hashes(&conn, &[stored_hash_index(0, size - 1)])?
                .first()
                .map_or([0u8; 32], |h| h.0)
        };
        let mut state = WriterState::new(&conn, frontier, key.clone(), options.clone())?;
        if state.frontier.size() != state.head.unwrap_or(0) {
            tracing::error!(
                entries = state.frontier.size(),
                sealed = state.head.unwrap_or(0),
                "the audit ledger holds entries no signed checkpoint covers; run `tandem audit verify`"
            );
        }
        let journal_dir = dir.join("journal");
        std::fs::create_dir_all(&journal_dir).map_err(io("create", &journal_dir))?;
        let (recovered, prev) = replay(&journal_dir, size, prev)?;
        if !recovered.is_empty() {
            let count = recovered.len();
            let mut recovered = recovered;
            state.commit(&mut conn, content.as_ref(), &mut recovered)?;
            tracing::info!(
                entries = count,
                "sealed audit entries recovered from the journal"
            );
        }
        for path in journal::segments(&journal_dir)? {
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
        let next = state.frontier.size();
        let segment = Segment::create(&journal_dir, next)?;
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("tandem-audit-writer".into())
            .spawn(move || writer(conn, content, rx, state))
            .map_err(io("start the writer for", dir))?;
        let ledger = FileLedger {
            dir: dir.to_owned(),
            key,
            options,
            seq: Mutex::new(Some(Sequencer {
                next,
                prev,
                segment,
                frame: Vec::with_capacity(1024),
                tx,
            })),
            writer: Mutex::new(Some(writer)),
            _lock: lock,
        };
        if let Some(retention) = ledger.options.retention
            && ledger.options.capture
        {
            ledger.purge_content(retention)?;
        }
        Ok(ledger)
    }

    /// The ledger's key (public verifier key, content hashing, attestation signing).
    pub(crate) fn key(&self) -> &LedgerKey {
        &self.key
    }

    /// The ledger directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether content capture is on.
    pub(crate) fn captures(&self) -> bool {
        self.options.capture
    }

    /// Seals `entry` as the next index and journals it. When this returns, the entry survives the
    /// process being killed (and power loss with [`Options::fsync`]); it is committed and covered
    /// by a signed checkpoint shortly after, off the caller's path. `content` goes to the content
    /// store when capture is on.
    pub(crate) fn append(&self, entry: &Entry, content: Option<Content>) -> Result<u64> {
        let json = serde_json::to_vec(entry)?;
        let kind = entry.kind();
        let principal = entry.principal().user.clone();
        let content = if self.options.capture { content } else { None };
        let mut guard = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = guard.as_mut().ok_or(Error::WriterGone)?;
        let idx = seq.next;
        let ts = now_ms();
        let mut body = Vec::with_capacity(json.len() + 96);
        seal(idx, &seq.prev, ts, &json, &mut body);
        let leaf = record_hash(&body);
        seq.segment.append(&leaf, &body, &mut seq.frame)?;
        if self.options.fsync {
            seq.segment.sync()?;
        }
        seq.next += 1;
        seq.prev = leaf.0;
        // Sent under the lock, so the writer receives entries in index order.
        let sent = seq.tx.send(Msg::Entry(Box::new(Pending {
            idx,
            ts,
            kind,
            principal,
            leaf,
            body,
            content,
        })));
        if sent.is_err() {
            tracing::error!(
                index = idx,
                "the audit writer has stopped; the entry stays in the journal until restart"
            );
        }
        if seq.segment.bytes >= self.options.segment_bytes {
            let journal_dir = self.dir.join("journal");
            match Segment::create(&journal_dir, seq.next) {
                Ok(fresh) => {
                    let closed = std::mem::replace(&mut seq.segment, fresh);
                    let _ = seq.tx.send(Msg::Rotated {
                        closed: closed.path,
                        end: seq.next,
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not start a new audit journal segment")
                }
            }
        }
        Ok(idx)
    }

    /// Waits until every entry appended before this call is committed and sealed by a signed
    /// checkpoint; returns the ledger size.
    pub(crate) fn flush(&self) -> Result<u64> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        {
            let guard = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
            let seq = guard.as_ref().ok_or(Error::WriterGone)?;
            seq.tx
                .send(Msg::Flush(ack_tx))
                .map_err(|_| Error::WriterGone)?;
        }
        // Cut the writer's linger short.
        if let Some(handle) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            handle.thread().unpark();
        }
        ack_rx.recv().map_err(|_| Error::WriterGone)?
    }

    /// Deletes captured content older than `age`; the log itself is untouched (it holds only hashes).
    pub(crate) fn purge_content(&self, age: Duration) -> Result<u64> {
        purge_content(&self.dir, age)
    }

    /// Commits what is pending and stops the writer.
    pub(crate) fn close(&self) -> Result<u64> {
        let size = self.flush();
        self.seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
        size
    }
}

impl Drop for FileLedger {
    fn drop(&mut self) {
        if self
            .seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
            && let Err(err) = self.close()
        {
            tracing::error!(error = %err, "closing the audit ledger");
        }
    }
}

/// Deletes captured content older than `age` from the content store in `dir`.
pub fn purge_content(dir: &Path, age: Duration) -> Result<u64> {
    let path = dir.join("content.db");
    if !path.exists() {
        return Ok(0);
    }
    let conn = db::open_content(&path)?;
    let cutoff = now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let removed = conn.execute("DELETE FROM content WHERE ts_ms < ?1", [cutoff])?;
    Ok(removed as u64)
}

/// Journal frames not yet in the database: those at index `size` on, chained onto `prev`.
fn replay(dir: &Path, size: u64, mut prev: [u8; 32]) -> Result<(Vec<Pending>, [u8; 32])> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        i: u64,
        prev: &'a str,
        ts: i64,
        #[serde(borrow)]
        kind: &'a str,
        principal: HeadPrincipal,
    }
    #[derive(serde::Deserialize)]
    struct HeadPrincipal {
        user: String,
    }
    let mut out = Vec::new();
    let mut next = size;
    'segments: for path in journal::segments(dir)? {
        for frame in journal::read(&path)? {
            let head: Head<'_> = match serde_json::from_slice(&frame.body) {
                Ok(head) => head,
                Err(err) => {
                    tracing::error!(path = %path.display(), error = %err, "unreadable audit journal entry; replay stops");
                    break 'segments;
                }
            };
            if head.i < next {
                continue;
            }
            if head.i > next || head.prev != hex::encode(prev) {
                tracing::error!(path = %path.display(), index = head.i, expected = next, "audit journal does not continue the ledger; replay stops");
                break 'segments;
            }
            let kind = match head.kind {
                "request" => "request",
                "change" => "change",
                _ => {
                    tracing::error!(
                        index = head.i,
                        "audit journal entry of unknown kind; replay stops"
                    );
                    break 'segments;
                }
            };
            out.push(Pending {
                idx: head.i,
                ts: head.ts,
                kind,
                principal: head.principal.user,
                leaf: frame.leaf,
                body: frame.body.clone(),
                content: None,
            });
            prev = frame.leaf.0;
            next += 1;
        }
    }
    Ok((out, prev))
}

/// What the writer thread owns besides its connections.
struct WriterState {
    frontier: Frontier,
    key: LedgerKey,
    options: Options,
    /// Size of the newest checkpoint.
    head: Option<u64>,
    /// Size of the newest checkpoint kept for good.
    kept: Option<u64>,
    /// Closed journal segments and the index each ends before.
    closed: Vec<(PathBuf, u64)>,
}

impl WriterState {
    fn new(
        conn: &Connection,
        frontier: Frontier,
        key: LedgerKey,
        options: Options,
    ) -> Result<Self> {
        let sizes: Vec<u64> = db::checkpoints(conn)?.into_iter().map(|(s, _)| s).collect();
        let head = sizes.last().copied();
        let kept = sizes
            .len()
            .checked_sub(2)
            .and_then(|i| sizes.get(i))
            .copied();
        Ok(WriterState {
            frontier,
            key,
            options,
            head,
            kept,
            closed: Vec::new(),
        })
    }

    /// Inserts the batch, its stored hashes and a signed checkpoint of the new size in one
    /// transaction. The in-memory tree only advances when the transaction commits.
    fn commit(
        &mut self,
        conn: &mut Connection,
        content: Option<&Connection>,
        batch: &mut Vec<Pending>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut frontier = self.frontier.clone();
        let tx = conn.transaction()?;
        let mut captured = Vec::new();
        {
            let mut entry = tx.prepare_cached(
                "INSERT INTO entries (idx, ts_ms, kind, principal, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut hash = tx.prepare_cached("INSERT INTO hashes (id, hash) VALUES (?1, ?2)")?;
            let mut failed = None;
            for p in batch.iter_mut() {
                let idx = i64::try_from(p.idx).unwrap_or(i64::MAX);
                entry.execute(params![idx, p.ts, p.kind, p.principal, p.body])?;
                frontier.push(p.leaf, |id, h| {
                    if failed.is_none()
                        && let Err(e) =
                            hash.execute(params![i64::try_from(id).unwrap_or(i64::MAX), &h.0[..]])
                    {
                        failed = Some(e);
                    }
                });
                if let Some(c) = p.content.take() {
                    captured.push((idx, p.ts, c));
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        let size = frontier.size();
        let note = sign_checkpoint(&self.key, size, frontier.root())?;
        tx.execute(
            "INSERT OR REPLACE INTO checkpoints (size, ts_ms, note) VALUES (?1, ?2, ?3)",
            params![i64::try_from(size).unwrap_or(i64::MAX), now_ms(), note],
        )?;
        let mut kept = self.kept;
        if let Some(previous) = self.head.filter(|&h| h < size) {
            let far_enough = kept.is_none_or(|k| previous - k >= self.options.checkpoint_every);
            if far_enough {
                kept = Some(previous);
            } else {
                tx.execute(
                    "DELETE FROM checkpoints WHERE size = ?1",
                    [i64::try_from(previous).unwrap_or(i64::MAX)],
                )?;
            }
        }
        tx.commit()?;
        batch.clear();
        self.frontier = frontier;
        self.head = Some(size);
        self.kept = kept;
        if let Some(conn) = content
            && !captured.is_empty()
            && let Err(err) = insert_content(conn, &captured)
        {
            tracing::error!(error = %err, "writing captured audit content failed");
        }
        self.closed.retain(|(path, end)| {
            if *end > size {
                return true;
            }
            if let Err(err) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %err, "could not remove a committed audit journal segment");
            }
            false
        });
        Ok(())
    }
}

fn insert_content(conn: &Connection, rows: &[(i64, i64, Content)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO content (idx, ts_ms, prompt, answer) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (idx, ts, c) in rows {
        stmt.execute(params![idx, ts, c.prompt, c.answer])?;
    }
    Ok(())
}

/// The signed C2SP checkpoint of a tree.
pub(crate) fn sign_checkpoint(key: &LedgerKey, size: u64, root: Hash) -> Result<String> {
    let checkpoint = Checkpoint::new(key.name(), size, root, "")
        .map_err(|e| Error::Invalid(format!("checkpoint: {e}")))?;
    let mut note = signed_note::Note::new(&checkpoint.to_bytes(), &[])
        .map_err(|e| Error::Invalid(format!("checkpoint note: {e}")))?;
    note.add_sigs(&[key.signer()])
        .map_err(|e| Error::Invalid(format!("signing a checkpoint: {e}")))?;
    String::from_utf8(note.to_bytes()).map_err(|_| Error::Invalid("checkpoint is not UTF-8".into()))
}

fn writer(
    mut conn: Connection,
    content: Option<Connection>,
    rx: Receiver<Msg>,
    mut state: WriterState,
) {
    // Entries whose commit failed are retried with the next batch, never dropped.
    let mut batch: Vec<Pending> = Vec::new();
    let mut acks: Vec<SyncSender<Result<u64>>> = Vec::new();
    let mut retry = false;
    // Whether the last batch emptied the queue; only then is it worth waiting for more.
    let mut caught_up = true;
    loop {
        let first = if retry {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(msg) => Some(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        } else {
            match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => break,
            }
        };
        if caught_up && matches!(first, Some(Msg::Entry(_))) {
            std::thread::park_timeout(LINGER);
        }
        let mut next = first;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(p) => batch.push(*p),
                Msg::Rotated { closed, end } => state.closed.push((closed, end)),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let count = batch.len();
        caught_up = count < BATCH;
        let result = state.commit(&mut conn, content.as_ref(), &mut batch);
        retry = match &result {
            Ok(()) => false,
            Err(err) => {
                tracing::error!(error = %err, entries = count, "committing audit entries failed; they stay journalled and are retried");
                true
            }
        };
        for ack in acks.drain(..) {
            let reply = match &result {
                Ok(()) => Ok(state.frontier.size()),
                Err(err) => Err(Error::Invalid(format!("audit commit failed: {err}"))),
            };
            let _ = ack.send(reply);
        }
        if retry && matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
            break;
        }
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
