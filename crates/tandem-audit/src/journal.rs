//! The write-ahead journal: sealed entries are appended to a segment file on the request path,
//! before the client is answered, so a killed process loses nothing it answered for; the writer
//! thread moves them into the database and deletes segments it has committed.
//!
//! A frame is `len: u32 LE | leaf hash: 32 bytes | sealed entry: len bytes`. The leaf hash doubles
//! as the frame's checksum: replay stops at the first frame whose bytes do not hash to it (a torn
//! write at power loss).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tlog_tiles::{Hash, record_hash};

use crate::Result;
use crate::error::io;

/// A sealed entry read back from the journal.
pub(crate) struct Frame {
    pub(crate) leaf: Hash,
    pub(crate) body: Vec<u8>,
}

/// The segment being appended to.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) bytes: u64,
}

impl Segment {
    /// Creates the segment whose first entry has index `first`.
    pub(crate) fn create(dir: &Path, first: u64) -> Result<Segment> {
        let path = dir.join(format!("{first:020}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("create", &path))?;
        Ok(Segment {
            path,
            file,
            bytes: 0,
        })
    }

    /// Appends one frame with a single `write`, so it reaches the kernel whole.
    pub(crate) fn append(&mut self, leaf: &Hash, body: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let len = u32::try_from(body.len())
            .map_err(|_| crate::Error::Invalid("an audit entry is over 4 GiB".into()))?;
        buf.clear();
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&leaf.0);
        buf.extend_from_slice(body);
        self.file
            .write_all(buf)
            .map_err(io("append to", &self.path))?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Forces the segment to stable storage.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(io("sync", &self.path))
    }
}

/// Segment files in `dir`, oldest first.
pub(crate) fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let path = item.map_err(io("list", dir))?.path();
        if path.extension().is_some_and(|e| e == "log") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Every whole frame of a segment; stops at the first torn or corrupt frame (logged).
pub(crate) fn read(path: &Path) -> Result<Vec<Frame>> {
    let data = std::fs::read(path).map_err(io("read", path))?;
    let mut frames = Vec::new();
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            tracing::warn!(path = %path.display(), "audit journal ends in a torn frame header");
            break;
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((leaf, tail)) = tail.split_first_chunk::<32>() else {
            tracing::warn!(path = %path.display(), "audit journal ends in a torn frame");
            break;
        };
        let Some((body, tail)) = tail.split_at_checked(len) else {
            tracing::warn!(path = %path.display(), "audit journal ends in a torn frame");
            break;
        };
        let leaf = Hash(*leaf);
        if record_hash(body) != leaf {
            tracing::warn!(path = %path.display(), "audit journal frame does not match its hash; replay stops there");
            break;
        }
        frames.push(Frame {
            leaf,
            body: body.to_vec(),
        });
        rest = tail;
    }
    Ok(frames)
}
