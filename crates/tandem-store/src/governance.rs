//! Governance state: API keys (hashes only) and settled budget spend per rule, scope and window.

use rusqlite::{OptionalExtension, Row, params};

use crate::Result;
use crate::sqlite::Sqlite;

/// One API key as stored: the SHA-256 of the secret, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// Public id (`key_…`), shown in listings.
    pub id: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    /// The user the key acts for.
    pub user: String,
    /// Team, if any.
    pub team: Option<String>,
    /// Project, if any.
    pub project: Option<String>,
    /// Creation time, Unix ms.
    pub created_at_ms: i64,
    /// Expiry, Unix ms.
    pub expires_at_ms: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at_ms: Option<i64>,
}

/// Settled spend of one budget rule for one scope in one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetRow {
    /// Rule name.
    pub rule: String,
    /// Scope (`user:alice`).
    pub scope: String,
    /// Window start, Unix ms.
    pub window_start_ms: i64,
    /// Tokens spent.
    pub tokens: u64,
    /// Cost spent, in nano-dollars (10^-9 USD), so sums stay exact.
    pub cost_nanos: u64,
    /// Requests counted.
    pub requests: u64,
}

/// One stored version of the Cedar policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Increases with every upload.
    pub version: i64,
    /// The Cedar text.
    pub text: String,
    /// Where it came from (`admin upload`, a file path).
    pub source: String,
    /// When it was stored, Unix ms.
    pub created_at_ms: i64,
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: row.get(0)?,
        hash: row.get(1)?,
        user: row.get(2)?,
        team: row.get(3)?,
        project: row.get(4)?,
        created_at_ms: row.get(5)?,
        expires_at_ms: row.get(6)?,
        revoked_at_ms: row.get(7)?,
    })
}

const KEY_COLUMNS: &str =
    "id, hash, user, team, project, created_at_ms, expires_at_ms, revoked_at_ms";

impl Sqlite {
    /// Store a new key.
    pub(crate) fn insert_key(&self, key: &KeyRow) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    key.id,
                    key.hash,
                    key.user,
                    key.team,
                    key.project,
                    key.created_at_ms,
                    key.expires_at_ms,
                    key.revoked_at_ms
                ],
            )
            .map(|_| ())
        })
    }

    /// The key with this hash, if any (revoked and expired ones included: the caller decides).
    pub(crate) fn find_key(&self, hash: &str) -> Result<Option<KeyRow>> {
        self.with_conn(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1"
            ))?
            .query_row([hash], key_row)
            .optional()
        })
    }

    /// All keys, oldest first.
    pub(crate) fn list_keys(&self) -> Result<Vec<KeyRow>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"
            ))?;
            let rows = stmt.query_map([], key_row)?;
            rows.collect()
        })
    }

    /// Revoke a key by id; returns whether a live key was revoked. Takes effect on the next request.
    pub(crate) fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
                params![id, now_ms],
            )
            .map(|n| n > 0)
        })
    }

    /// Replace the stored spend rows with `rows` (upsert per rule, scope and window).
    pub(crate) fn save_budget_usage(&self, rows: &[BudgetRow]) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO budget_usage (rule, scope, window_start_ms, tokens, cost_nanos, requests)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(rule, scope, window_start_ms)
                     DO UPDATE SET tokens = excluded.tokens, cost_nanos = excluded.cost_nanos, requests = excluded.requests",
                )?;
                for r in rows {
                    stmt.execute(params![
                        r.rule,
                        r.scope,
                        r.window_start_ms,
                        r.tokens,
                        r.cost_nanos,
                        r.requests
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Stores a new policy version; returns its number.
    pub(crate) fn save_policy(&self, text: &str, source: &str) -> Result<i64> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO policy_versions (text, source, created_at_ms) VALUES (?1, ?2, ?3)",
                params![text, source, crate::sqlite::now_ms()],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// The newest policy version newer than `after`, if any.
    pub(crate) fn policy_after(&self, after: i64) -> Result<Option<PolicyVersion>> {
        self.with_conn(|conn| {
            conn.prepare_cached(
                "SELECT version, text, source, created_at_ms FROM policy_versions
                 WHERE version > ?1 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([after], |row| {
                Ok(PolicyVersion {
                    version: row.get(0)?,
                    text: row.get(1)?,
                    source: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            })
            .optional()
        })
    }

    /// All stored spend rows.
    pub(crate) fn load_budget_usage(&self) -> Result<Vec<BudgetRow>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT rule, scope, window_start_ms, tokens, cost_nanos, requests FROM budget_usage",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(BudgetRow {
                    rule: row.get(0)?,
                    scope: row.get(1)?,
                    window_start_ms: row.get(2)?,
                    tokens: row.get(3)?,
                    cost_nanos: row.get(4)?,
                    requests: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{BudgetRow, KeyRow, Store};

    #[test]
    fn keys_round_trip_and_revoke_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = KeyRow {
            id: "key_abc".into(),
            hash: "h1".into(),
            user: "alice".into(),
            team: Some("platform".into()),
            project: None,
            created_at_ms: 1,
            expires_at_ms: Some(10),
            revoked_at_ms: None,
        };
        store.insert_key(&key).unwrap();
        assert_eq!(store.find_key("h1").unwrap(), Some(key.clone()));
        assert_eq!(store.find_key("nope").unwrap(), None);
        assert!(store.revoke_key("key_abc", 5).unwrap());
        assert!(!store.revoke_key("key_abc", 6).unwrap(), "already revoked");
        assert_eq!(
            store.find_key("h1").unwrap().unwrap().revoked_at_ms,
            Some(5)
        );
        assert_eq!(store.list_keys().unwrap().len(), 1);
        assert!(store.insert_key(&key).is_err(), "duplicate id");
    }

    #[test]
    fn budget_rows_upsert() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut row = BudgetRow {
            rule: "r".into(),
            scope: "user:a".into(),
            window_start_ms: 0,
            tokens: 5,
            cost_nanos: 500,
            requests: 1,
        };
        store.save_budget_usage(&[row.clone()]).unwrap();
        row.tokens = 9;
        store.save_budget_usage(&[row.clone()]).unwrap();
        assert_eq!(store.load_budget_usage().unwrap(), vec![row]);
    }
}
