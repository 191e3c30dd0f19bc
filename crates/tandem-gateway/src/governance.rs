//! Identity, policy and budget plumbing of the server: the API-key store adapter, the authenticator built
//! from config, budget persistence, and policy reload that keeps the last good policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) use tandem_core::now_ms;

use tandem_auth::{Authenticator, AuthenticatorParts, KeyRecord, KeyStore, OidcValidator};
use tandem_budget::PersistedUsage;
use tandem_config::Config;
use tandem_core::Core;
use tandem_store::{BudgetRow, KeyRow, Store};

use crate::{Error, Result};

/// API keys looked up in the embedded store on every request, so a revocation takes effect at once.
pub(crate) struct StoreKeys(pub(crate) Arc<Store>);

impl KeyStore for StoreKeys {
    fn find_by_hash(&self, hash: &str) -> tandem_auth::Result<Option<KeyRecord>> {
        self.0
            .find_key(hash)
            .map(|row| row.map(key_record))
            .map_err(|err| tandem_auth::Error::Store(Box::new(err)))
    }
}

/// Store row → auth record.
pub(crate) fn key_record(row: KeyRow) -> KeyRecord {
    KeyRecord {
        id: row.id,
        hash: row.hash,
        user: row.user,
        team: row.team,
        project: row.project,
        created_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
        revoked_at_ms: row.revoked_at_ms,
    }
}

/// Auth record → store row.
pub fn key_row(record: &KeyRecord) -> KeyRow {
    KeyRow {
        id: record.id.clone(),
        hash: record.hash.clone(),
        user: record.user.clone(),
        team: record.team.clone(),
        project: record.project.clone(),
        created_at_ms: record.created_at_ms,
        expires_at_ms: record.expires_at_ms,
        revoked_at_ms: record.revoked_at_ms,
    }
}

/// The authenticator the config asks for.
pub(crate) fn authenticator(config: &Config, store: &Arc<Store>) -> Result<Authenticator> {
    let keys: Option<Arc<dyn KeyStore>> = match config.auth.api_keys {
        true => Some(Arc::new(StoreKeys(Arc::clone(store)))),
        false => None,
    };
    let oidc = match &config.auth.oidc {
        Some(oidc) => Some(OidcValidator::new(oidc.clone()).map_err(Error::Auth)?),
        None => None,
    };
    Ok(Authenticator::new(AuthenticatorParts {
        keys,
        oidc,
        allow_anonymous: config.auth.anonymous,
    }))
}

/// Budget spend as the store keeps it.
pub(crate) fn to_rows(usage: Vec<PersistedUsage>) -> Vec<BudgetRow> {
    usage
        .into_iter()
        .map(|u| BudgetRow {
            rule: u.rule,
            scope: u.scope,
            window_start_ms: u.window_start_ms,
            tokens: u.tokens,
            cost_nanos: u.cost_nanos,
            requests: u.requests,
        })
        .collect()
}

/// Budget spend as the ledger imports it.
pub(crate) fn from_rows(rows: Vec<BudgetRow>) -> Vec<PersistedUsage> {
    rows.into_iter()
        .map(|r| PersistedUsage {
            rule: r.rule,
            scope: r.scope,
            window_start_ms: r.window_start_ms,
            requests: r.requests,
            tokens: r.tokens,
            cost_nanos: r.cost_nanos,
        })
        .collect()
}

/// Write the ledger's settled spend to the store.
pub(crate) fn save_budgets(core: &Core, store: &Store) {
    if !core.ledger().has_rules() {
        return;
    }
    if let Err(err) = store.save_budget_usage(&to_rows(core.ledger().export())) {
        tracing::error!(error = %err, "saving budget spend failed");
    }
}

/// Every few seconds: persist budget spend, and reload the policy file when it changed.
/// A policy file that no longer parses or validates is reported and the last good policy stays in force.
pub(crate) async fn background(core: Arc<Core>, store: Arc<Store>, policy_file: Option<PathBuf>) {
    let mut last_modified = policy_file.as_deref().and_then(modified);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        save_budgets(&core, &store);
        let Some(path) = &policy_file else {
            continue;
        };
        let now = modified(path);
        if now == last_modified {
            continue;
        }
        last_modified = now;
        match tandem_config::load_policy(path) {
            Ok(policy) => {
                tracing::info!(path = %path.display(), policies = policy.ids().len(), "policy reloaded");
                core.set_policy(Arc::new(policy));
            }
            Err(err) => {
                tracing::error!(error = %err, "policy file refused; keeping the last good policy");
            }
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
