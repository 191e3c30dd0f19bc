//! The Merkle tree: RFC 6962 hashing (from `tlog_tiles`, the Rust port of Go's sumdb `tlog`), the
//! right edge of the tree kept in memory for appending, and the stored-hash numbering `tlog` uses
//! for proofs.

use tlog_tiles::{EMPTY_HASH, Hash, node_hash, stored_hash_index};

/// The complete subtrees on the right edge of the tree, largest first: all that appending and the
/// root need, `log2(size)` hashes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Frontier {
    size: u64,
    nodes: Vec<(u8, Hash)>,
}

impl Frontier {
    /// The right edge of a tree of `size` leaves, read from stored hashes.
    pub(crate) fn load(
        size: u64,
        read: impl FnOnce(&[u64]) -> crate::Result<Vec<Hash>>,
    ) -> crate::Result<Frontier> {
        let shape = shape(size);
        let ids: Vec<u64> = shape.iter().map(|(_, id)| *id).collect();
        let hashes = read(&ids)?;
        if hashes.len() != ids.len() {
            return Err(crate::Error::Invalid(format!(
                "the tree of {size} entries is missing stored hashes"
            )));
        }
        let nodes = shape
            .iter()
            .zip(hashes)
            .map(|((level, _), hash)| (*level, hash))
            .collect();
        Ok(Frontier { size, nodes })
    }

    /// Number of leaves.
    /// The stored hashes [`Frontier::load`] reads for a tree of `size` entries.
    pub(crate) fn ids(size: u64) -> Vec<u64> {
        shape(size).into_iter().map(|(_, id)| id).collect()
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. `stored` gets each new stored hash with its stored index, in increasing
    /// index order: the leaf, then every subtree it completes.
    pub(crate) fn push(&mut self, leaf: Hash, mut stored: impl FnMut(u64, Hash)) {
        let n = self.size;
        stored(stored_hash_index(0, n), leaf);
        self.nodes.push((0, leaf));
        while let [.., (left_level, left), (right_level, right)] = self.nodes[..] {
            if left_level != right_level {
                break;
            }
            let level = left_level + 1;
            let hash = node_hash(left, right);
            self.nodes.truncate(self.nodes.len() - 2);
            stored(stored_hash_index(level, n >> level), hash);
            self.nodes.push((level, hash));
        }
        self.size += 1;
    }

    /// The RFC 6962 root hash of the tree so far.
    pub(crate) fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(&(_, mut hash)) = nodes.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in nodes {
            hash = node_hash(left, hash);
        }
        hash
    }
}

/// The perfect subtrees a tree of `size` entries is made of, largest first: `(level, stored hash id)`.
fn shape(size: u64) -> Vec<(u8, u64)> {
    let mut shape = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            shape.push((level, stored_hash_index(level, start >> level)));
            start += width;
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tlog_tiles::{HashReader, record_hash, stored_hashes, tree_hash};

    use super::Frontier;

    struct Map(HashMap<u64, tlog_tiles::Hash>);

    impl HashReader for Map {
        fn read_hashes(&self, ids: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
            ids.iter()
                .map(|id| {
                    self.0
                        .get(id)
                        .copied()
                        .ok_or(tlog_tiles::Error::IndexesNotInTree)
                })
                .collect()
        }
    }

    /// The frontier produces exactly tlog's stored hashes, in order, and its root is tlog's tree hash.
    #[test]
    fn matches_tlog() {
        let mut reference = Map(HashMap::new());
        let mut frontier = Frontier::default();
        let mut next_id = 0u64;
        for n in 0..300u64 {
            let data = format!("entry {n}");
            let expected = stored_hashes(n, data.as_bytes(), &reference).unwrap();
            let mut got = Vec::new();
            frontier.push(record_hash(data.as_bytes()), |id, hash| {
                assert_eq!(id, next_id, "stored hashes come in index order");
                next_id += 1;
                got.push(hash);
            });
            assert_eq!(got, expected, "stored hashes of record {n}");
            let first = tlog_tiles::stored_hash_index(0, n);
            for (i, hash) in got.into_iter().enumerate() {
                reference.0.insert(first + i as u64, hash);
            }
            assert_eq!(frontier.root(), tree_hash(n + 1, &reference).unwrap());
            let reloaded =
                Frontier::load(n + 1, |ids| Ok(reference.read_hashes(ids).unwrap())).unwrap();
            assert_eq!(reloaded.root(), frontier.root());
        }
    }
}
