//! The ledger in PostgreSQL (`TANDEM_TEST_POSTGRES_URL`): several writers with one key append through
//! one sequencer, the copy verifies, and tampering with the database is found.

use std::sync::Arc;

use tandem_audit::{Ledger, Reader, VerifyOptions, snapshot_postgres};

use crate::support::{options, request};

/// The server URL, or `None` (skipped, said on stderr) unless `TANDEM_REQUIRE_SERVICES` makes it required.
fn server() -> Option<String> {
    match std::env::var("TANDEM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("TANDEM_REQUIRE_SERVICES").is_none(),
                "TANDEM_TEST_POSTGRES_URL is not set but TANDEM_REQUIRE_SERVICES is"
            );
            eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh database; returns its URL.
fn fresh_database(admin_url: &str) -> String {
    let name = format!(
        "audit_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn execute(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
    });
}

fn verify_copy(url: &str) -> tandem_audit::Report {
    let copy = tempfile::tempdir().unwrap();
    snapshot_postgres(url, copy.path()).unwrap();
    Reader::open(copy.path())
        .unwrap()
        .verify(&VerifyOptions::default())
        .unwrap()
}

/// Three writers sharing one key append 600 entries concurrently: indexes are unique and dense, and
/// the copied ledger verifies.
#[test]
fn writers_share_one_sequencer() {
    let Some(admin) = server() else {
        return;
    };
    let url = fresh_database(&admin);
    let keys = tempfile::tempdir().unwrap();
    let writers: Vec<Arc<Ledger>> = (0..3)
        .map(|_| Arc::new(Ledger::open_postgres(&url, keys.path(), options()).unwrap()))
        .collect();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let ledger = Arc::clone(&writers[t % 3]);
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| ledger.append(&request(t as u64 * 1000 + i), None).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut indexes: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..600).collect::<Vec<u64>>());
    assert_eq!(writers[0].flush().unwrap(), 600);
    let report = verify_copy(&url);
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 600);
}

/// A writer with another key is refused; an entry altered in the database is found by verification.
#[test]
fn foreign_keys_and_tampering_are_refused() {
    let Some(admin) = server() else {
        return;
    };
    let url = fresh_database(&admin);
    let keys = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_postgres(&url, keys.path(), options()).unwrap();
    for i in 0..10 {
        ledger.append(&request(i), None).unwrap();
    }
    let other = tempfile::tempdir().unwrap();
    let refused = Ledger::open_postgres(&url, other.path(), options()).unwrap_err();
    assert!(refused.to_string().contains("signed by"), "{refused}");
    assert!(verify_copy(&url).ok());
    execute(
        &url,
        "UPDATE audit_entries SET body = convert_to(replace(convert_from(body, 'UTF8'), 'alice', 'mallory'), 'UTF8') WHERE idx = 3",
    );
    let report = verify_copy(&url);
    assert!(!report.ok(), "a rewritten entry must be found");
}
