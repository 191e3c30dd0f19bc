//! Identity, policy and budget plumbing of the server: the API-key store adapter, the authenticator built
//! from config, budget persistence, and policy reload that keeps the last good policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

pub(crate) use tandem_core::now_ms;

use tandem_auth::{Authenticator, AuthenticatorParts, KeyRecord, KeyStore, OidcValidator};
use tandem_budget::PersistedUsage;
use tandem_config::Config;
use tandem_core::Core;
use tandem_store::{BudgetRow, KeyRow, Store};
use tokio::sync::watch;

use crate::{AppState, Error, Result};

/// API keys looked up in the embedded store on every request, so a revocation takes effect at once.
pub(crate) struct StoreKeys(pub(crate) Arc<Store>);

impl KeyStore for StoreKeys {
    fn find_by_hash(&self, hash: &str) -> tandem_auth::Result<Option<KeyRecord>> {
        let lookup = || self.0.find_key(hash);
        // A PostgreSQL lookup waits for a round trip: let the runtime move its other tasks to another
        // worker meanwhile (only possible on the multi-threaded runtime that `tandem serve` uses).
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let found = match self.0.engine() == "postgres" && multi_thread {
            true => tokio::task::block_in_place(lookup),
            false => lookup(),
        };
        found
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

/// Every few seconds: persist budget spend, reload the policy file when it changed, and take up a policy
/// version another replica stored. A policy file that no longer parses or validates is reported and the
/// last good policy stays in force; a good one is stored as a new version, so replicas that share a
/// database follow it too.
///
/// Each round works on the state `states` holds now, so a configuration reload is followed; when a reload
/// names another policy file, watching starts over on that file (the reload has already read it).
pub(crate) async fn background(states: watch::Receiver<AppState>) {
    let mut watched: Option<(PathBuf, Option<SystemTime>)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let state = states.borrow().clone();
        save_budgets(&state.core, &state.store);
        follow_stored_policy(&state.core, &state.store, &state.policy_version);
        let Some(path) = &state.policy_file else {
            watched = None;
            continue;
        };
        let now = modified(path);
        match &mut watched {
            Some((file, last_modified)) if file == path => {
                if *last_modified == now {
                    continue;
                }
                *last_modified = now;
                reload_policy_file(&state.core, &state.store, path, &state.policy_version);
            }
            _ => watched = Some((path.clone(), now)),
        }
    }
}

/// Reads the policy file and, if it parses and validates, puts it in force and stores it as a version
/// (unless the newest stored version already has the same text). Returns whether it was taken.
pub(crate) fn reload_policy_file(
    core: &Core,
    store: &Store,
    path: &std::path::Path,
    version: &AtomicI64,
) -> bool {
    let policy = match tandem_config::load_policy(path) {
        Ok(policy) => policy,
        Err(err) => {
            tracing::error!(error = %err, "policy file refused; keeping the last good policy");
            return false;
        }
    };
    tracing::info!(path = %path.display(), policies = policy.ids().len(), "policy reloaded");
    core.set_policy(Arc::new(policy));
    if let Ok(text) = std::fs::read_to_string(path) {
        store_policy(store, &text, &path.display().to_string(), version);
    }
    true
}

/// Stores a policy that is now in force as a new version, unless the newest stored one has this text.
pub(crate) fn store_policy(store: &Store, text: &str, source: &str, version: &AtomicI64) {
    let newest = match store.policy_after(0) {
        Ok(newest) => newest,
        Err(err) => {
            tracing::error!(error = %err, "reading stored policy versions failed");
            return;
        }
    };
    if newest.as_ref().is_some_and(|v| v.text == text) {
        if let Some(v) = newest {
            version.fetch_max(v.version, Ordering::SeqCst);
        }
        return;
    }
    match store.save_policy(text, source) {
        Ok(saved) => {
            version.fetch_max(saved, Ordering::SeqCst);
        }
        Err(err) => tracing::error!(error = %err, "storing the policy version failed"),
    }
}

/// Puts in force a policy version newer than the one this process has, if one was stored.
fn follow_stored_policy(core: &Core, store: &Store, version: &AtomicI64) {
    let current = version.load(Ordering::SeqCst);
    let newer = match store.policy_after(current) {
        Ok(Some(newer)) => newer,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "checking for a newer policy version failed");
            return;
        }
    };
    version.fetch_max(newer.version, Ordering::SeqCst);
    match tandem_policy::Policy::parse(&newer.text, &newer.source) {
        Ok(policy) => {
            tracing::info!(
                version = newer.version,
                policies = policy.ids().len(),
                "stored policy version in force"
            );
            core.set_policy(Arc::new(policy));
        }
        Err(err) => {
            tracing::error!(version = newer.version, error = %err, "stored policy version refused; keeping the last good policy");
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
