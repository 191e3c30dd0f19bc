//! The ledger's SQLite schema and the queries shared by the writer, the reader and verification.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tlog_tiles::{Hash, HashReader};

use crate::Result;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    principal TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_ts ON entries(ts_ms);
CREATE INDEX IF NOT EXISTS entries_principal ON entries(principal, ts_ms);
CREATE TABLE IF NOT EXISTS hashes (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    note TEXT NOT NULL
);
";

const CONTENT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS content (
    idx INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS content_ts ON content(ts_ms);
";

/// Opens (creating) the ledger database for writing.
pub(crate) fn open_rw(path: &Path) -> Result<Connection> {
    open_wal(path, SCHEMA)
}

/// Opens (creating) the content capture database.
pub(crate) fn open_content(path: &Path) -> Result<Connection> {
    open_wal(path, CONTENT_SCHEMA)
}

fn open_wal(path: &Path, schema: &str) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// Opens an existing database read-only.
pub(crate) fn open_ro(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(crate::Error::NotFound(format!(
            "no audit ledger at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Number of entries (one past the highest index).
pub(crate) fn size(conn: &Connection) -> Result<u64> {
    let max: Option<i64> = conn.query_row("SELECT MAX(idx) FROM entries", [], |r| r.get(0))?;
    Ok(max.map_or(0, |m| u64::try_from(m).unwrap_or(0) + 1))
}

/// The stored hashes with these ids.
pub(crate) fn read_hashes(conn: &Connection, ids: &[u64]) -> Result<Vec<Hash>> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM hashes WHERE id = ?1")?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let bytes: Option<Vec<u8>> = stmt
            .query_row([i64::try_from(id).unwrap_or(i64::MAX)], |r| r.get(0))
            .optional()?;
        let hash = bytes
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| crate::Error::NotFound(format!("stored hash {id} is missing")))?;
        out.push(Hash(hash));
    }
    Ok(out)
}

/// Checkpoints as `(size, note)`, by size.
pub(crate) fn checkpoints(conn: &Connection) -> Result<Vec<(u64, String)>> {
    let mut stmt = conn.prepare("SELECT size, note FROM checkpoints ORDER BY size")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (size, note) = row?;
        out.push((u64::try_from(size).unwrap_or(0), note));
    }
    Ok(out)
}

/// Writes a ledger copied from PostgreSQL into a new SQLite database at `path`; returns the entries.
pub(crate) fn write_snapshot(path: &Path, rows: &crate::pg::Rows) -> Result<u64> {
    if path.exists() {
        return Err(crate::Error::Invalid(format!(
            "{} exists already; copy the ledger into an empty directory",
            path.display()
        )));
    }
    let mut conn = open_rw(path)?;
    let tx = conn.transaction()?;
    {
        let mut entry = tx.prepare(
            "INSERT INTO entries (idx, ts_ms, kind, principal, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (idx, ts, kind, principal, body) in &rows.entries {
            entry.execute(rusqlite::params![idx, ts, kind, principal, body])?;
        }
        let mut hash = tx.prepare("INSERT INTO hashes (id, hash) VALUES (?1, ?2)")?;
        for (id, bytes) in &rows.hashes {
            hash.execute(rusqlite::params![id, bytes])?;
        }
        let mut checkpoint =
            tx.prepare("INSERT INTO checkpoints (size, ts_ms, note) VALUES (?1, ?2, ?3)")?;
        for (size, ts, note) in &rows.checkpoints {
            checkpoint.execute(rusqlite::params![size, ts, note])?;
        }
    }
    tx.commit()?;
    Ok(rows.entries.len() as u64)
}

/// `tlog`'s view of the stored hashes, for proofs.
pub(crate) struct DbHashes<'a>(pub(crate) &'a Connection);

impl HashReader for DbHashes<'_> {
    fn read_hashes(&self, ids: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        read_hashes(self.0, ids).map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))
    }
}
