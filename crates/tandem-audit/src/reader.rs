//! The reading side: entries by user and time, checkpoints, inclusion and consistency proofs, and
//! export as JSON lines or in-toto attestations. Opens the database read-only, so it works while
//! `tandem serve` is writing.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;
use tlog_tiles::{Hash, prove_record, prove_tree, tree_hash};

use crate::entry::{Entry, Sealed};
use crate::key::LedgerKey;
use crate::{Error, Result, db};

/// Which entries to read.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this user's entries.
    pub user: Option<String>,
    /// Only entries appended at or after this Unix millisecond.
    pub since_ms: Option<i64>,
    /// Only entries appended before this Unix millisecond.
    pub until_ms: Option<i64>,
    /// Only `request` or `change` entries.
    pub kind: Option<String>,
    /// At most this many, newest first when set.
    pub limit: Option<usize>,
}

/// An entry as stored: its index, its sealed bytes and the parsed entry.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Position in the log.
    pub index: u64,
    /// The exact sealed bytes (the Merkle leaf).
    pub body: Vec<u8>,
    /// The parsed entry.
    pub sealed: Sealed,
}

/// Proof that an entry is in the tree of a signed checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// Hex leaf hash of the entry.
    pub leaf: String,
    /// Size of the tree the proof is for.
    pub size: u64,
    /// Hex root hash of that tree.
    pub root: String,
    /// Hex audit path, leaf to root.
    pub proof: Vec<String>,
}

/// Proof that the tree of `size` extends the tree of `old_size`.
#[derive(Clone, Debug, Serialize)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// Hex root of the older tree.
    pub old_root: String,
    /// The newer tree's size.
    pub size: u64,
    /// Hex root of the newer tree.
    pub root: String,
    /// Hex proof hashes.
    pub proof: Vec<String>,
}

/// A read-only view of a ledger directory.
pub struct Reader {
    pub(crate) dir: PathBuf,
    pub(crate) conn: Connection,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens the ledger in `dir` read-only.
    pub fn open(dir: &Path) -> Result<Reader> {
        let conn = db::open_ro(&dir.join("ledger.db"))?;
        Ok(Reader {
            dir: dir.to_owned(),
            conn,
        })
    }

    /// The verifier key: `ledger.pub` in the ledger directory.
    pub fn vkey(&self) -> Result<String> {
        let path = self.dir.join("ledger.pub");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().to_owned()),
            Err(_) => LedgerKey::load(&self.dir.join("ledger.key")).map(|k| k.vkey().to_owned()),
        }
    }

    /// Number of committed entries.
    pub fn size(&self) -> Result<u64> {
        db::size(&self.conn)
    }

    /// The newest signed checkpoint.
    pub fn checkpoint(&self) -> Result<Option<String>> {
        Ok(db::checkpoints(&self.conn)?.pop().map(|(_, note)| note))
    }

    /// Every kept checkpoint as `(size, signed note)`.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        db::checkpoints(&self.conn)
    }

    /// Entries matching `filter`, oldest first (newest first with a limit).
    pub fn entries(
        &self,
        filter: &Filter,
        mut each: impl FnMut(Stored) -> Result<()>,
    ) -> Result<()> {
        let mut sql = String::from("SELECT idx, body FROM entries WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(user) = &filter.user {
            sql.push_str(" AND principal = ?");
            args.push(user.clone().into());
        }
        if let Some(since) = filter.since_ms {
            sql.push_str(" AND ts_ms >= ?");
            args.push(since.into());
        }
        if let Some(until) = filter.until_ms {
            sql.push_str(" AND ts_ms < ?");
            args.push(until.into());
        }
        if let Some(kind) = &filter.kind {
            sql.push_str(" AND kind = ?");
            args.push(kind.clone().into());
        }
        match filter.limit {
            Some(limit) => {
                sql.push_str(" ORDER BY idx DESC LIMIT ?");
                args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
            }
            None => sql.push_str(" ORDER BY idx"),
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            let index = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
            let body: Vec<u8> = row.get(1)?;
            let sealed = Sealed::parse(&body)
                .map_err(|e| Error::Invalid(format!("entry {index} is unreadable: {e}")))?;
            each(Stored {
                index,
                body,
                sealed,
            })?;
        }
        Ok(())
    }

    /// Proof that entry `index` is in the tree of `size` entries (default: the newest checkpoint).
    pub fn prove_inclusion(&self, index: u64, size: Option<u64>) -> Result<InclusionProof> {
        let size = self.proof_size(size)?;
        if index >= size {
            return Err(Error::NotFound(format!(
                "entry {index} is not in the tree of {size} entries"
            )));
        }
        let hashes = db::DbHashes(&self.conn);
        let proof =
            prove_record(size, index, &hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        let leaf = db::read_hashes(&self.conn, &[tlog_tiles::stored_hash_index(0, index)])?;
        let root = tree_hash(size, &hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(InclusionProof {
            index,
            leaf: leaf.first().map(hex_hash).unwrap_or_default(),
            size,
            root: hex_hash(&root),
            proof: proof.iter().map(hex_hash).collect(),
        })
    }

    /// Proof that the tree of `size` entries (default: the newest checkpoint) extends the tree of
    /// `old_size` entries.
    pub fn prove_consistency(&self, old_size: u64, size: Option<u64>) -> Result<ConsistencyProof> {
        let size = self.proof_size(size)?;
        if old_size > size {
            return Err(Error::NotFound(format!(
                "the ledger has {size} entries, fewer than {old_size}"
            )));
        }
        let hashes = db::DbHashes(&self.conn);
        let proof =
            prove_tree(size, old_size, &hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        let old_root = tree_hash(old_size, &hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        let root = tree_hash(size, &hashes).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(ConsistencyProof {
            old_size,
            old_root: hex_hash(&old_root),
            size,
            root: hex_hash(&root),
            proof: proof.iter().map(hex_hash).collect(),
        })
    }

    fn proof_size(&self, size: Option<u64>) -> Result<u64> {
        let sealed = db::checkpoints(&self.conn)?.last().map_or(0, |(s, _)| *s);
        match size {
            Some(s) if s <= sealed => Ok(s),
            Some(s) => Err(Error::NotFound(format!(
                "no signed checkpoint covers {s} entries (the newest covers {sealed})"
            ))),
            None => Ok(sealed),
        }
    }

    /// Captured prompt and answer of entry `index`, if capture was on and it was not purged.
    pub fn content(&self, index: u64) -> Result<Option<crate::Content>> {
        let path = self.dir.join("content.db");
        if !path.exists() {
            return Ok(None);
        }
        let conn = db::open_ro(&path)?;
        let row = conn.query_row(
            "SELECT prompt, answer FROM content WHERE idx = ?1",
            [i64::try_from(index).unwrap_or(i64::MAX)],
            |r| {
                Ok(crate::Content {
                    prompt: r.get(0)?,
                    answer: r.get(1)?,
                })
            },
        );
        match row {
            Ok(c) => Ok(Some(c)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The entry at `index`, if the ledger has one.
    pub fn entry(&self, index: u64) -> Result<Option<Stored>> {
        let Ok(idx) = i64::try_from(index) else {
            return Ok(None);
        };
        let body: Option<Vec<u8>> =
            match self
                .conn
                .query_row("SELECT body FROM entries WHERE idx = ?1", [idx], |row| {
                    row.get(0)
                }) {
                Ok(body) => Some(body),
                Err(rusqlite::Error::QueryReturnedNoRows) => None,
                Err(e) => return Err(e.into()),
            };
        body.map(|body| {
            let sealed = Sealed::parse(&body)
                .map_err(|e| Error::Invalid(format!("entry {index} is unreadable: {e}")))?;
            Ok(Stored {
                index,
                body,
                sealed,
            })
        })
        .transpose()
    }

    /// The in-toto v1 Statement of an accepted change (unsigned; [`Reader::attestations`] signs),
    /// `None` for any other entry.
    pub fn provenance(stored: &Stored) -> Option<serde_json::Value> {
        match &stored.sealed.entry {
            Entry::Change(change) if change.accepted => {
                Some(crate::export::statement(stored, change))
            }
            _ => None,
        }
    }

    /// Writes every accepted change as an in-toto v1 Statement in a DSSE envelope signed with the
    /// ledger key, one JSON object per line. Needs the private key.
    pub fn attestations(&self, filter: &Filter, mut out: impl std::io::Write) -> Result<u64> {
        let key = LedgerKey::load(&self.dir.join("ledger.key"))?;
        let filter = Filter {
            kind: Some("change".into()),
            ..filter.clone()
        };
        let mut count = 0;
        self.entries(&filter, |stored| {
            let Entry::Change(change) = &stored.sealed.entry else {
                return Ok(());
            };
            if !change.accepted {
                return Ok(());
            }
            let statement = crate::export::statement(&stored, change);
            let payload = serde_json::to_vec(&statement)?;
            let envelope = key.dsse(crate::export::PAYLOAD_TYPE, &payload);
            serde_json::to_writer(&mut out, &envelope)?;
            out.write_all(b"\n")
                .map_err(|e| Error::Invalid(format!("writing attestations: {e}")))?;
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }
}

/// Lowercase hex of a hash.
pub(crate) fn hex_hash(hash: &Hash) -> String {
    hex::encode(hash.0)
}
