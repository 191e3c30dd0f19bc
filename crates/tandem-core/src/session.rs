//! Per-session routing memory: the tier a session is on, whether it was escalated, and its failure signals.
//!
//! Keyed by the client's session key (`prompt_cache_key`, `session-id`, Anthropic `metadata.user_id`).
//! Bounded: entries idle longer than the TTL are dropped, and past the capacity the oldest go first.
//! This is per-process memory; several replicas share sessions only through the load balancer's affinity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What Tandem remembers about one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The tier the session was routed to last.
    pub tier: Option<String>,
    /// Whether the session was escalated to the deep tier (it stays there).
    pub escalated: bool,
    /// Failure signals seen (tool errors, failed checks reported by the client).
    pub failures: u32,
    /// Requests that re-sent the same task unchanged.
    pub retries: u32,
    /// Streams the client cut off.
    pub interrupts: u32,
    /// Fingerprint of the last request's task: hash of the last user text and the message count.
    pub last_task: Option<(u64, usize)>,
}

#[derive(Debug)]
struct Entry {
    state: SessionState,
    last_seen: Instant,
}

/// The bounded session table.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// An empty table.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Sessions {
            ttl,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of `key` at `now` (default when unknown or expired).
    pub fn get(&self, key: &str, now: Instant) -> SessionState {
        let map = self.lock();
        match map.get(key) {
            Some(entry) if now.duration_since(entry.last_seen) <= self.ttl => entry.state.clone(),
            _ => SessionState::default(),
        }
    }

    /// Change the state of `key` at `now`, creating it if needed.
    pub fn update(&self, key: &str, now: Instant, change: impl FnOnce(&mut SessionState)) {
        let mut map = self.lock();
        if !map.contains_key(key) && map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, e| now.duration_since(e.last_seen) <= ttl);
            if map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(key.to_owned()).or_insert_with(|| Entry {
            state: SessionState::default(),
            last_seen: now,
        });
        if now.duration_since(entry.last_seen) > self.ttl {
            entry.state = SessionState::default();
        }
        entry.last_seen = now;
        change(&mut entry.state);
    }

    /// Number of entries, expired ones included until they are evicted.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::session::Sessions;

    #[test]
    fn remembers_expires_and_evicts() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        s.update("a", t0, |st| st.tier = Some("live".into()));
        assert_eq!(s.get("a", t0).tier.as_deref(), Some("live"));
        assert_eq!(
            s.get("a", t0 + Duration::from_secs(61)).tier,
            None,
            "expired"
        );
        s.update("b", t0 + Duration::from_secs(1), |st| st.failures = 1);
        s.update("c", t0 + Duration::from_secs(2), |st| st.failures = 2);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.get("a", t0 + Duration::from_secs(3)).tier,
            None,
            "oldest evicted"
        );
        assert_eq!(s.get("c", t0 + Duration::from_secs(3)).failures, 2);
    }
}
