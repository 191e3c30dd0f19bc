//! A bounded memo of entity stores, keyed by the query's principal and action.
//!
//! Building a Cedar entity store computes the transitive closure of the entity hierarchy, which is
//! most of the cost of an evaluation (about 8 µs of 11 µs with a team and a tier as parents). The store
//! depends only on the principal and the action (with its resource), and a gateway sees the same few
//! users and models again and again, so the store is built once per distinct pair and shared.
//!
//! The memo is a pure function cache: hit or miss, the decision is the same. When it is full, each
//! insert evicts one entry (whichever comes first in hash order, so in effect at random), so a stream
//! of distinct queries (say, a client sending a new alias every time) costs a rebuild per query, never
//! more memory than [`CAPACITY`] stores, and no request pays for emptying the whole memo.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, PoisonError, RwLock};

use cedar_policy::Entities;

use crate::{Action, Principal, Query};

/// The most entity stores kept (each is a few hundred bytes to a few KB).
pub(crate) const CAPACITY: usize = 4096;

struct Cached {
    principal: Principal,
    action: Action,
    entities: Arc<Entities>,
}

/// Entity stores by the hash of `(principal, action)`; a hit also compares the key itself, so a hash
/// collision is only a miss.
#[derive(Default)]
pub(crate) struct EntityCache {
    hasher: RandomState,
    map: RwLock<HashMap<u64, Cached>>,
}

impl EntityCache {
    /// The store for `query`, built by `build` when it is not cached.
    pub(crate) fn get_or_build(
        &self,
        query: &Query,
        build: impl FnOnce() -> Result<Entities, String>,
    ) -> Result<Arc<Entities>, String> {
        let key = self.hasher.hash_one((&query.principal, &query.action));
        {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(cached) = map.get(&key)
                && cached.principal == query.principal
                && cached.action == query.action
            {
                return Ok(Arc::clone(&cached.entities));
            }
        }
        let entities = Arc::new(build()?);
        let cached = Cached {
            principal: query.principal.clone(),
            action: query.action.clone(),
            entities: Arc::clone(&entities),
        };
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let evicted = match map.len() >= CAPACITY && !map.contains_key(&key) {
            true => map.keys().next().copied().and_then(|old| map.remove(&old)),
            false => None,
        };
        let replaced = map.insert(key, cached);
        drop(map);
        // The evicted and replaced stores are freed after the lock is released.
        drop((evicted, replaced));
        Ok(entities)
    }

    /// How many stores are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests;
