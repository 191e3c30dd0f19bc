//! [`Ledger`]: where the gateway and the agent append entries. One ledger directory with its journal and
//! SQLite database (one process), or PostgreSQL shared by several replicas with one sequencer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::entry::Entry;
use crate::key::LedgerKey;
use crate::ledger::{Content, FileLedger, Options};
use crate::pg::PgLedger;
use crate::{Error, Result};

/// The append side of the audit ledger.
#[derive(Debug)]
pub struct Ledger {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Files(FileLedger),
    Postgres { ledger: PgLedger, dir: PathBuf },
}

impl Ledger {
    /// Opens the ledger in `dir` (creating it and its key), seals whatever the journal holds from
    /// before a crash, and starts the writer thread. One process per directory (a lock file).
    pub fn open(dir: &Path, options: Options) -> Result<Ledger> {
        Ok(Ledger {
            inner: Inner::Files(FileLedger::open(dir, options)?),
        })
    }

    /// Opens the ledger kept in PostgreSQL at `url`, which any number of replicas append to. The
    /// signing key is `dir/ledger.key` (created when missing); every replica must hold the same key,
    /// and a database whose ledger another key signs is refused.
    pub fn open_postgres(url: &str, dir: &Path, options: Options) -> Result<Ledger> {
        std::fs::create_dir_all(dir).map_err(crate::error::io("create", dir))?;
        let key = LedgerKey::load_or_create(&dir.join("ledger.key"), &options.name)?;
        let pub_path = dir.join("ledger.pub");
        if !pub_path.exists() {
            std::fs::write(&pub_path, format!("{}\n", key.vkey()))
                .map_err(crate::error::io("write", &pub_path))?;
        }
        Ok(Ledger {
            inner: Inner::Postgres {
                ledger: PgLedger::open(url, key, options)?,
                dir: dir.to_owned(),
            },
        })
    }

    /// The signing key.
    pub fn key(&self) -> &LedgerKey {
        match &self.inner {
            Inner::Files(ledger) => ledger.key(),
            Inner::Postgres { ledger, .. } => ledger.key(),
        }
    }

    /// The ledger directory (for PostgreSQL, where the key lives).
    pub fn dir(&self) -> &Path {
        match &self.inner {
            Inner::Files(ledger) => ledger.dir(),
            Inner::Postgres { dir, .. } => dir,
        }
    }

    /// Whether an append waits for a database round trip (the ledger in PostgreSQL), rather than a
    /// local journal write.
    pub fn is_remote(&self) -> bool {
        matches!(self.inner, Inner::Postgres { .. })
    }

    /// Whether prompt and answer text are captured.
    pub fn captures(&self) -> bool {
        match &self.inner {
            Inner::Files(ledger) => ledger.captures(),
            Inner::Postgres { ledger, .. } => ledger.captures(),
        }
    }

    /// Seals `entry` with the next index and makes it durable before returning: in the journal (files),
    /// or committed in PostgreSQL with its stored hashes and a signed checkpoint. Returns its index.
    pub fn append(&self, entry: &Entry, content: Option<Content>) -> Result<u64> {
        match &self.inner {
            Inner::Files(ledger) => ledger.append(entry, content),
            Inner::Postgres { ledger, .. } => ledger.append(entry, content),
        }
    }

    /// Waits until every entry appended so far is committed and covered by a signed checkpoint;
    /// returns the ledger's size.
    pub fn flush(&self) -> Result<u64> {
        match &self.inner {
            Inner::Files(ledger) => ledger.flush(),
            Inner::Postgres { ledger, .. } => ledger.size(),
        }
    }

    /// Deletes captured content older than `age`; returns how many entries' content went.
    pub fn purge_content(&self, age: Duration) -> Result<u64> {
        match &self.inner {
            Inner::Files(ledger) => ledger.purge_content(age),
            Inner::Postgres { ledger, .. } => ledger.purge_content(age),
        }
    }

    /// Commits everything and stops the writer; later appends fail.
    pub fn close(&self) -> Result<u64> {
        match &self.inner {
            Inner::Files(ledger) => ledger.close(),
            Inner::Postgres { ledger, .. } => ledger.size(),
        }
    }
}

impl From<FileLedger> for Ledger {
    fn from(ledger: FileLedger) -> Self {
        Ledger {
            inner: Inner::Files(ledger),
        }
    }
}

/// Copies the PostgreSQL ledger at `url` into `dir` as a ledger directory (SQLite database and the
/// verifier key `vkey`), in one consistent snapshot, so that [`crate::Reader`] can show, prove and
/// verify it exactly as a local ledger. Returns the number of entries copied.
pub fn snapshot_postgres(url: &str, dir: &Path) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(crate::error::io("create", dir))?;
    let (rows, vkey) = crate::pg::snapshot(url)?;
    let Some(vkey) = vkey else {
        return Err(Error::NotFound("no audit ledger in this database".into()));
    };
    let pub_path = dir.join("ledger.pub");
    std::fs::write(&pub_path, format!("{vkey}\n")).map_err(crate::error::io("write", &pub_path))?;
    crate::db::write_snapshot(&dir.join("ledger.db"), &rows)
}
