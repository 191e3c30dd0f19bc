//! Verification: recompute the whole tree from the stored entries and check it against every signed
//! checkpoint, the hash chain between entries, the stored proof hashes, and optionally a checkpoint
//! kept outside the ledger. Every edited, deleted, reordered or inserted entry is reported with its
//! index.

use std::collections::BTreeMap;

use serde::Serialize;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash, check_tree, prove_tree, record_hash, split_stored_hash_index};

use crate::reader::{Reader, hex_hash};
use crate::tree::Frontier;
use crate::{Error, Result, db};

/// Stop listing problems of one kind after this many (the count is still reported).
const MAX_LISTED: usize = 100;

/// One way the stored log differs from what was signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// Indexes `from..=to` are absent: entries were deleted.
    Missing {
        /// First absent index.
        from: u64,
        /// Last absent index.
        to: u64,
    },
    /// The entry stored at `index` was sealed as entry `claims`: entries were reordered, or some
    /// were deleted or inserted and the rest renumbered.
    Moved {
        /// Where it is stored.
        index: u64,
        /// The index sealed inside it.
        claims: u64,
    },
    /// The entry at `index` is not a readable sealed entry.
    Unreadable {
        /// The entry.
        index: u64,
        /// Why.
        error: String,
    },
    /// The entry at `index` no longer hashes to the leaf hash recorded for it: it was edited.
    Edited {
        /// The entry.
        index: u64,
    },
    /// Entry `index + 1` records a different hash for its predecessor: entry `index` was replaced
    /// (with its recorded hash rewritten), or entries were removed or inserted at that point.
    Relinked {
        /// The entry whose hash changed.
        index: u64,
    },
    /// The searchable columns of entry `index` (time, kind, user) differ from its sealed content.
    Columns {
        /// The entry.
        index: u64,
    },
    /// A stored proof hash differs from the recomputed tree.
    StoredHash {
        /// Tree level.
        level: u8,
        /// Node index at that level.
        node: u64,
    },
    /// The checkpoint of `size` entries has a root the stored entries do not produce: something in
    /// `since..size` changed after it was signed.
    Checkpoint {
        /// The checkpoint's tree size.
        size: u64,
        /// Size of the last checkpoint that still matched (0 if none).
        since: u64,
    },
    /// The checkpoint of `size` entries is not validly signed by the ledger key.
    Signature {
        /// The checkpoint's tree size.
        size: u64,
        /// Why.
        error: String,
    },
    /// The stored hashes do not prove that the checkpoint of `to` extends the one of `from`.
    Inconsistent {
        /// Older size.
        from: u64,
        /// Newer size.
        to: u64,
    },
    /// A checkpoint covers `size` entries but only `entries` are stored: entries were removed
    /// from the end.
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// Entries stored.
        entries: u64,
    },
    /// Entries `from..=to` are covered by no signed checkpoint: they were added behind the ledger's
    /// back (the writer commits entries and their checkpoint in one transaction).
    Unsealed {
        /// First unsealed index.
        from: u64,
        /// Last unsealed index.
        to: u64,
    },
    /// The log does not extend the trusted checkpoint given to `verify`.
    Trusted {
        /// The trusted checkpoint's size.
        size: u64,
        /// What differs.
        error: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing { from, to } if from == to => write!(f, "entry {from}: deleted"),
            Problem::Missing { from, to } => write!(f, "entries {from}..={to}: deleted"),
            Problem::Moved { index, claims } => write!(
                f,
                "entry {index}: holds entry {claims} (entries reordered, or deleted or inserted and renumbered)"
            ),
            Problem::Unreadable { index, error } => {
                write!(f, "entry {index}: unreadable ({error})")
            }
            Problem::Edited { index } => {
                write!(
                    f,
                    "entry {index}: edited (its content no longer matches its hash)"
                )
            }
            Problem::Relinked { index } => write!(
                f,
                "entry {index}: replaced, or entries removed or inserted after it (entry {} records a different hash for it)",
                index + 1
            ),
            Problem::Columns { index } => write!(
                f,
                "entry {index}: its searchable time, kind or user columns were edited"
            ),
            Problem::StoredHash { level, node } => {
                write!(
                    f,
                    "stored proof hash at level {level}, node {node}: altered"
                )
            }
            Problem::Checkpoint { size, since } => write!(
                f,
                "checkpoint of {size} entries: the entries no longer produce its root; an entry in {since}..{size} was changed"
            ),
            Problem::Signature { size, error } => {
                write!(f, "checkpoint of {size} entries: bad signature ({error})")
            }
            Problem::Inconsistent { from, to } => write!(
                f,
                "checkpoints of {from} and {to} entries: no valid consistency proof"
            ),
            Problem::Truncated { size, entries } => write!(
                f,
                "checkpoint of {size} entries, but only {entries} are stored: entries {entries}..{size} were deleted"
            ),
            Problem::Unsealed { from, to } => write!(
                f,
                "entries {from}..={to}: covered by no signed checkpoint (inserted behind the ledger's back)"
            ),
            Problem::Trusted { size, error } => {
                write!(f, "trusted checkpoint of {size} entries: {error}")
            }
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Kept checkpoints checked.
    pub checkpoints: u64,
    /// The verifier key checkpoints were checked with.
    pub vkey: String,
    /// Size and hex root of the newest valid checkpoint.
    pub head: Option<(u64, String)>,
    /// Everything that is wrong, in log order.
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub unlisted: u64,
}

impl Report {
    /// Whether the ledger verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What to verify against.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Verifier key to use instead of the ledger directory's `ledger.pub` (an auditor's own copy).
    pub vkey: Option<String>,
    /// Signed checkpoints kept outside the ledger; the log must extend each.
    pub trusted: Vec<String>,
}

struct Collector {
    problems: Vec<Problem>,
    listed: BTreeMap<&'static str, usize>,
    unlisted: u64,
}

impl Collector {
    fn push(&mut self, problem: Problem) {
        let kind = match &problem {
            Problem::Missing { .. } => "missing",
            Problem::Moved { .. } => "moved",
            Problem::Unreadable { .. } => "unreadable",
            Problem::Edited { .. } => "edited",
            Problem::Relinked { .. } => "relinked",
            Problem::Columns { .. } => "columns",
            Problem::StoredHash { .. } => "stored",
            Problem::Checkpoint { .. } => "checkpoint",
            Problem::Signature { .. } => "signature",
            Problem::Inconsistent { .. } => "inconsistent",
            Problem::Truncated { .. } => "truncated",
            Problem::Unsealed { .. } => "unsealed",
            Problem::Trusted { .. } => "trusted",
        };
        let listed = self.listed.entry(kind).or_default();
        if *listed < MAX_LISTED {
            *listed += 1;
            self.problems.push(problem);
        } else {
            self.unlisted += 1;
        }
    }
}

/// The header fields verification reads from a sealed entry.
#[derive(serde::Deserialize)]
struct Head<'a> {
    i: u64,
    #[serde(borrow)]
    prev: &'a str,
    ts: i64,
    #[serde(borrow)]
    kind: &'a str,
    #[serde(borrow)]
    principal: HeadPrincipal<'a>,
}

#[derive(serde::Deserialize)]
struct HeadPrincipal<'a> {
    #[serde(borrow)]
    user: std::borrow::Cow<'a, str>,
}

impl<'a> Head<'a> {
    /// Reads the header of a sealed entry. The ledger writes it in one fixed shape, read here
    /// without a JSON parse of the whole entry; anything else falls back to a full parse.
    fn read(body: &'a [u8]) -> std::result::Result<Head<'a>, serde_json::Error> {
        Head::fast(body).map_or_else(|| serde_json::from_slice(body), Ok)
    }

    fn fast(body: &'a [u8]) -> Option<Head<'a>> {
        let rest = body.strip_prefix(b"{\"i\":")?;
        let (i, rest) = digits(rest)?;
        let rest = rest.strip_prefix(b",\"prev\":\"")?;
        let (prev, rest) = rest.split_at_checked(64)?;
        let rest = rest.strip_prefix(b"\",\"ts\":")?;
        let (ts, rest) = digits(rest)?;
        let rest = rest.strip_prefix(b",\"kind\":\"")?;
        let end = rest.iter().position(|&b| b == b'"')?;
        let (kind, rest) = rest.split_at(end);
        // The user is the first string after the first `"principal":{"user":`.
        const USER: &[u8] = b"\"principal\":{\"user\":";
        let at = rest.windows(USER.len()).position(|w| w == USER)? + USER.len();
        let mut de = serde_json::Deserializer::from_slice(rest.get(at..)?);
        let user = <std::borrow::Cow<'a, str> as serde::Deserialize>::deserialize(&mut de).ok()?;
        Some(Head {
            i,
            prev: std::str::from_utf8(prev).ok()?,
            ts: i64::try_from(ts).ok()?,
            kind: std::str::from_utf8(kind).ok()?,
            principal: HeadPrincipal { user },
        })
    }
}

/// A decimal number at the start of `bytes`, and what follows it.
fn digits(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let (number, rest) = bytes.split_at(len);
    std::str::from_utf8(number)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, rest))
}

/// A checkpoint whose signature checked out.
struct Signed {
    origin: String,
    root: Hash,
}

fn open_checkpoint(note: &str, verifiers: &VerifierList) -> std::result::Result<Signed, String> {
    let note = Note::from_bytes(note.as_bytes()).map_err(|e| e.to_string())?;
    note.verify(verifiers).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::from_bytes(note.text()).map_err(|e| e.to_string())?;
    Ok(Signed {
        origin: checkpoint.origin().to_owned(),
        root: *checkpoint.hash(),
    })
}

impl Reader {
    /// Verifies the whole ledger.
    pub fn verify(&self, options: &VerifyOptions) -> Result<Report> {
        let vkey = match &options.vkey {
            Some(v) => v.clone(),
            None => self.vkey()?,
        };
        let verifier = StandardVerifier::new(&vkey)
            .map_err(|e| Error::Invalid(format!("verifier key `{vkey}`: {e}")))?;
        let origin = vkey.split('+').next().unwrap_or_default().to_owned();
        let verifiers = VerifierList::new(vec![Box::new(verifier)]);
        let mut out = Collector {
            problems: Vec::new(),
            listed: BTreeMap::new(),
            unlisted: 0,
        };
        // Checkpoints to compare roots at, by size: the ledger's own, then trusted ones.
        let mut at: BTreeMap<u64, Vec<(bool, Option<Signed>)>> = BTreeMap::new();
        let stored_checkpoints = db::checkpoints(&self.conn)?;
        for (size, note) in &stored_checkpoints {
            let signed = match open_checkpoint(note, &verifiers) {
                Ok(s) if s.origin != origin => {
                    out.push(Problem::Signature {
                        size: *size,
                        error: format!("origin `{}` is not `{origin}`", s.origin),
                    });
                    None
                }
                Ok(s) => Some(s),
                Err(error) => {
                    out.push(Problem::Signature { size: *size, error });
                    None
                }
            };
            at.entry(*size).or_default().push((false, signed));
        }
        for note in &options.trusted {
            let size = Note::from_bytes(note.as_bytes())
                .ok()
                .and_then(|n| Checkpoint::from_bytes(n.text()).ok())
                .map(|c| c.size())
                .unwrap_or(0);
            match open_checkpoint(note, &verifiers) {
                Ok(s) => at.entry(size).or_default().push((true, Some(s))),
                Err(error) => out.push(Problem::Trusted {
                    size,
                    error: format!("not valid for this key: {error}"),
                }),
            }
        }

        let mut entries = self
            .conn
            .prepare("SELECT idx, ts_ms, kind, principal, body FROM entries ORDER BY idx")?;
        let mut rows = entries.query([])?;
        let mut hashes = self
            .conn
            .prepare("SELECT id, hash FROM hashes ORDER BY id")?;
        let mut hash_rows = hashes.query([])?;
        let mut pending_hash: Option<(u64, Vec<u8>)> = None;
        let mut next_hash = |id: u64| -> Result<Option<Vec<u8>>> {
            loop {
                if pending_hash.is_none() {
                    match hash_rows.next()? {
                        Some(row) => {
                            let rid = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(u64::MAX);
                            pending_hash = Some((rid, row.get(1)?));
                        }
                        None => return Ok(None),
                    }
                }
                match pending_hash.take() {
                    Some((rid, hash)) if rid == id => return Ok(Some(hash)),
                    Some((rid, _)) if rid < id => {}
                    other => {
                        pending_hash = other;
                        return Ok(None);
                    }
                }
            }
        };

        let mut frontier = Frontier::default();
        let mut last_leaf = [0u8; 32];
        let mut last_good = 0u64;
        let mut expected = 0u64;
        let mut matched: Vec<(u64, Hash)> = Vec::new();
        let mut stored_bad: Vec<(u64, bool)> = Vec::new();
        while let Some(row) = rows.next()? {
            let index = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(u64::MAX);
            let ts: i64 = row.get(1)?;
            let body = row.get_ref(4)?.as_bytes().map_err(rusqlite::Error::from)?;
            if index > expected {
                out.push(Problem::Missing {
                    from: expected,
                    to: index - 1,
                });
            }
            expected = index + 1;
            let leaf = record_hash(body);
            match Head::read(body) {
                Err(e) => out.push(Problem::Unreadable {
                    index,
                    error: e.to_string(),
                }),
                Ok(head) => {
                    if head.i != index {
                        out.push(Problem::Moved {
                            index,
                            claims: head.i,
                        });
                    }
                    if !hex_eq(head.prev, &last_leaf) && frontier.size() > 0 {
                        out.push(Problem::Relinked {
                            index: index.saturating_sub(1),
                        });
                    }
                    let kind: String = row.get(2)?;
                    let principal: String = row.get(3)?;
                    if head.ts != ts || head.kind != kind || head.principal.user != principal {
                        out.push(Problem::Columns { index });
                    }
                }
            }
            stored_bad.clear();
            let mut failed = None;
            frontier.push(leaf, |id, hash| {
                if failed.is_some() {
                    return;
                }
                match next_hash(id) {
                    Ok(Some(stored)) if stored.as_slice() == hash.0.as_slice() => {}
                    Ok(_) => stored_bad.push((id, true)),
                    Err(e) => failed = Some(e),
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            for &(id, _) in &stored_bad {
                let (level, node) = split_stored_hash_index(id);
                if level == 0 {
                    out.push(Problem::Edited { index });
                } else {
                    out.push(Problem::StoredHash { level, node });
                }
            }
            last_leaf = leaf.0;
            let size = frontier.size();
            if let Some(checks) = at.get(&size) {
                let root = frontier.root();
                for (trusted, signed) in checks {
                    let Some(signed) = signed else { continue };
                    if signed.root == root {
                        if !trusted {
                            last_good = size;
                            matched.push((size, root));
                        }
                    } else if *trusted {
                        out.push(Problem::Trusted {
                            size,
                            error: "the log no longer produces its root: it was rewritten".into(),
                        });
                    } else {
                        out.push(Problem::Checkpoint {
                            size,
                            since: last_good,
                        });
                    }
                }
            }
        }
        let total = frontier.size();
        for (&size, checks) in at.range(total + 1..) {
            for (trusted, _) in checks {
                if *trusted {
                    out.push(Problem::Trusted {
                        size,
                        error: format!(
                            "the log has only {total} entries: entries were deleted from the end"
                        ),
                    });
                } else {
                    out.push(Problem::Truncated {
                        size,
                        entries: total,
                    });
                }
            }
        }
        let sealed = stored_checkpoints.last().map_or(0, |(s, _)| *s);
        if total > sealed {
            out.push(Problem::Unsealed {
                from: sealed,
                to: total - 1,
            });
        }
        // The stored hashes must prove each kept checkpoint consistent with the one before.
        let reader = db::DbHashes(&self.conn);
        for pair in matched.windows(2) {
            let [(old, old_root), (new, new_root)] = pair else {
                continue;
            };
            let consistent = prove_tree(*new, *old, &reader)
                .and_then(|proof| check_tree(&proof, *new, *new_root, *old, *old_root));
            if consistent.is_err() {
                out.push(Problem::Inconsistent {
                    from: *old,
                    to: *new,
                });
            }
        }
        Ok(Report {
            entries: total,
            checkpoints: stored_checkpoints.len() as u64,
            vkey,
            head: matched.last().map(|(s, r)| (*s, hex_hash(r))),
            problems: out.problems,
            unlisted: out.unlisted,
        })
    }
}

/// Whether lowercase hex `text` spells `bytes`.
fn hex_eq(text: &str, bytes: &[u8; 32]) -> bool {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).is_ok() && text.as_bytes() == buf.as_slice()
}

#[cfg(test)]
mod tests {
    use super::Head;

    #[test]
    fn the_fast_header_read_agrees_with_a_full_parse() {
        let prev = "ab".repeat(32);
        let body = format!(
            r#"{{"i":42,"prev":"{prev}","ts":1795000000000,"kind":"request","id":"x","started_at_ms":1,"principal":{{"user":"al\"ice","teams":["t"]}},"error":"\"principal\":{{\"user\":\"mallory\""}}"#
        );
        let fast = Head::fast(body.as_bytes()).unwrap();
        let full: Head<'_> = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (
                fast.i,
                fast.prev,
                fast.ts,
                fast.kind,
                fast.principal.user.as_ref()
            ),
            (
                full.i,
                full.prev,
                full.ts,
                full.kind,
                full.principal.user.as_ref()
            )
        );
        assert_eq!(fast.principal.user, "al\"ice");
        // Anything in another shape takes the full parse.
        assert!(Head::fast(br#"{"prev":"x","i":1}"#).is_none());
    }
}
