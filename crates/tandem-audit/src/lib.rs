//! Tandem's audit ledger: a tamper-evident, append-only record of who asked what, which model
//! answered, what changed and why it was accepted.
//!
//! - The log is an RFC 6962 / 9162 Merkle tree (hashing, stored-hash numbering, inclusion and
//!   consistency proofs from `tlog_tiles`, the Rust port of Go's sumdb `tlog`). Each entry also
//!   seals its index and the hash of the entry before it, so an altered entry is found by index.
//! - Checkpoints are C2SP signed notes (`signed_note`, Ed25519), written in the same transaction as
//!   the entries they cover.
//! - [`Ledger::append`] journals the sealed entry before it returns (a `write` to an append-only
//!   segment file, microseconds), so a process killed after answering loses nothing; a writer
//!   thread commits to SQLite (WAL) in batches and deletes committed segments.
//! - Entries hold keyed hashes of prompts and answers, never their text. Optional content capture
//!   goes to a separate database with a retention period; purging it leaves the log intact.
//!
//! Architecture invariant: no HTTP, no async; the gateway calls [`Ledger::append`] from its
//! recorder and the CLI reads through [`Reader`].

mod db;
mod entry;
mod error;
mod export;
mod journal;
mod key;
mod ledger;
mod pg;
mod reader;
mod sink;
mod tree;
mod verify;

pub use entry::{
    ChangeEntry, CheckRun, DlpFinding, Entry, FileChange, PolicyDecision, Principal, RequestEntry,
    Sealed, Tokens,
};
pub use error::{Error, Result};
pub use export::{PAYLOAD_TYPE, PREDICATE_TYPE};
pub use key::{ContentKey, LedgerKey, dsse_pae, verify_dsse};
pub use ledger::{Content, Options, purge_content};
pub use reader::{ConsistencyProof, Filter, InclusionProof, Reader, Stored};
pub use sink::{Ledger, snapshot_postgres};
pub use verify::{Problem, Report, VerifyOptions};

/// Checks an inclusion proof against a root (hex), as an auditor without database access would.
pub fn check_inclusion(proof: &InclusionProof) -> Result<()> {
    let parse = |s: &str| -> Result<tlog_tiles::Hash> {
        let bytes: [u8; 32] = hex::decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Invalid(format!("`{s}` is not a hex SHA-256 hash")))?;
        Ok(tlog_tiles::Hash(bytes))
    };
    let path = proof
        .proof
        .iter()
        .map(|h| parse(h))
        .collect::<Result<Vec<_>>>()?;
    tlog_tiles::check_record(
        &path,
        proof.size,
        parse(&proof.root)?,
        proof.index,
        parse(&proof.leaf)?,
    )
    .map_err(|e| Error::Invalid(format!("inclusion proof does not verify: {e}")))
}
