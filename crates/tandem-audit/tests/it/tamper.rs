//! Tamper with the stored log in every way and check that `verify` reports each with its index.

use std::path::Path;

use tandem_audit::{Problem, Reader, VerifyOptions};
use tempfile::TempDir;

use crate::support::{body, db, ledger, set_body};

const N: u64 = 2_000;

/// A sealed ledger of `N` entries in a fresh directory.
fn sealed() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path(), N);
    dir
}

fn verify(dir: &Path) -> Vec<Problem> {
    verify_with(dir, &VerifyOptions::default())
}

fn verify_with(dir: &Path, options: &VerifyOptions) -> Vec<Problem> {
    let report = Reader::open(dir).unwrap().verify(options).unwrap();
    report.problems
}

fn leaf(body: &str) -> Vec<u8> {
    tlog_tiles::record_hash(body.as_bytes()).0.to_vec()
}

#[test]
fn an_untouched_ledger_verifies() {
    let dir = sealed();
    let report = Reader::open(dir.path())
        .unwrap()
        .verify(&VerifyOptions::default())
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, N);
    assert_eq!(report.head.as_ref().map(|h| h.0), Some(N));
    assert!(
        report.checkpoints >= N / 200,
        "kept checkpoints: {}",
        report.checkpoints
    );
}

#[test]
fn an_edited_entry_is_found() {
    let dir = sealed();
    let conn = db(dir.path());
    let edited = body(&conn, 1234).replace("\"output\":5", "\"output\":6");
    set_body(&conn, 1234, &edited);
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Edited { index: 1234 }),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::Checkpoint { since, size } if *since <= 1234 && *size > 1234)
        ),
        "{problems:?}"
    );
}

#[test]
fn an_edited_entry_with_its_hash_rewritten_is_found() {
    let dir = sealed();
    let conn = db(dir.path());
    let edited = body(&conn, 1234).replace("\"user\":\"bob\"", "\"user\":\"eve\"");
    set_body(&conn, 1234, &edited);
    conn.execute(
        "UPDATE hashes SET hash = ?2 WHERE id = ?1",
        rusqlite::params![tlog_tiles::stored_hash_index(0, 1234) as i64, leaf(&edited)],
    )
    .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Relinked { index: 1234 }),
        "{problems:?}"
    );
    assert!(
        !problems.contains(&Problem::Edited { index: 1234 }),
        "{problems:?}"
    );
}

#[test]
fn the_last_entry_rewritten_is_caught_by_its_checkpoint() {
    let dir = sealed();
    let conn = db(dir.path());
    let last = (N - 1) as i64;
    let edited = body(&conn, last).replace("\"output\":5", "\"output\":0");
    set_body(&conn, last, &edited);
    conn.execute(
        "UPDATE hashes SET hash = ?2 WHERE id = ?1",
        rusqlite::params![
            tlog_tiles::stored_hash_index(0, N - 1) as i64,
            leaf(&edited)
        ],
    )
    .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Checkpoint { size, since } if *size == N && *since < N)),
        "{problems:?}"
    );
}

#[test]
fn a_deleted_entry_is_found() {
    let dir = sealed();
    db(dir.path())
        .execute("DELETE FROM entries WHERE idx = 777", [])
        .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Missing { from: 777, to: 777 }),
        "{problems:?}"
    );
}

#[test]
fn a_deleted_entry_with_the_rest_renumbered_is_found() {
    let dir = sealed();
    let mut conn = db(dir.path());
    let tx = conn.transaction().unwrap();
    tx.execute("DELETE FROM entries WHERE idx = 777", [])
        .unwrap();
    for idx in 778..N as i64 {
        tx.execute("UPDATE entries SET idx = ?1 - 1 WHERE idx = ?1", [idx])
            .unwrap();
    }
    tx.commit().unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Moved {
            index: 777,
            claims: 778
        }),
        "{problems:?}"
    );
    assert!(
        problems.contains(&Problem::Relinked { index: 776 }),
        "{problems:?}"
    );
}

#[test]
fn reordered_entries_are_found() {
    let dir = sealed();
    let conn = db(dir.path());
    let (a, b) = (body(&conn, 1000), body(&conn, 1001));
    set_body(&conn, 1000, &b);
    set_body(&conn, 1001, &a);
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Moved {
            index: 1000,
            claims: 1001
        }),
        "{problems:?}"
    );
    assert!(
        problems.contains(&Problem::Moved {
            index: 1001,
            claims: 1000
        }),
        "{problems:?}"
    );
}

#[test]
fn an_inserted_entry_is_found() {
    let dir = sealed();
    let mut conn = db(dir.path());
    // A forged entry, correctly chained onto entry 1499, slid in at 1500.
    let forged = body(&conn, 1500).replace("req-1500", "req-forged");
    let tx = conn.transaction().unwrap();
    for idx in (1500..N as i64).rev() {
        tx.execute("UPDATE entries SET idx = ?1 + 1 WHERE idx = ?1", [idx])
            .unwrap();
    }
    tx.execute(
        "INSERT INTO entries (idx, ts_ms, kind, principal, body) SELECT 1500, ts_ms, kind, principal, ?1 FROM entries WHERE idx = 1501",
        [forged.as_bytes()],
    )
    .unwrap();
    tx.commit().unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Moved {
            index: 1501,
            claims: 1500
        }),
        "{problems:?}"
    );
    assert!(
        problems.contains(&Problem::Relinked { index: 1500 }),
        "{problems:?}"
    );
}

#[test]
fn an_entry_appended_behind_the_ledgers_back_is_found() {
    let dir = sealed();
    let conn = db(dir.path());
    let last = body(&conn, (N - 1) as i64);
    let prev = hex::encode(leaf(&last));
    let head_end = last.find(",\"ts\"").unwrap();
    let forged = format!("{{\"i\":{N},\"prev\":\"{prev}\"{}", &last[head_end..]);
    conn.execute(
        "INSERT INTO entries (idx, ts_ms, kind, principal, body) SELECT ?1, ts_ms, kind, principal, ?2 FROM entries WHERE idx = ?3",
        rusqlite::params![N as i64, forged.as_bytes(), (N - 1) as i64],
    )
    .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Unsealed { from: N, to: N }),
        "{problems:?}"
    );
}

#[test]
fn entries_cut_from_the_end_are_found() {
    let dir = sealed();
    db(dir.path())
        .execute("DELETE FROM entries WHERE idx >= ?1", [(N - 10) as i64])
        .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::Truncated {
            size: N,
            entries: N - 10
        }),
        "{problems:?}"
    );
}

#[test]
fn a_tail_cut_with_its_checkpoints_is_found_against_a_trusted_checkpoint() {
    let dir = sealed();
    let trusted = Reader::open(dir.path())
        .unwrap()
        .checkpoint()
        .unwrap()
        .unwrap();
    let conn = db(dir.path());
    let keep: i64 = conn
        .query_row(
            "SELECT MAX(size) FROM checkpoints WHERE size < ?1",
            [(N - 200) as i64],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("DELETE FROM entries WHERE idx >= ?1", [keep])
        .unwrap();
    conn.execute("DELETE FROM checkpoints WHERE size > ?1", [keep])
        .unwrap();
    assert!(
        verify(dir.path()).is_empty(),
        "without outside evidence a clean cut looks whole"
    );
    let problems = verify_with(
        dir.path(),
        &VerifyOptions {
            trusted: vec![trusted],
            ..VerifyOptions::default()
        },
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Trusted { size, .. } if *size == N)),
        "{problems:?}"
    );
}

#[test]
fn a_forged_checkpoint_is_found() {
    let dir = sealed();
    let conn = db(dir.path());
    let (size, note): (i64, String) = conn
        .query_row(
            "SELECT size, note FROM checkpoints ORDER BY size LIMIT 1 OFFSET 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // Same signature, different root.
    let mut lines: Vec<String> = note.lines().map(str::to_owned).collect();
    lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let forged = lines.join("\n") + "\n";
    conn.execute(
        "UPDATE checkpoints SET note = ?2 WHERE size = ?1",
        rusqlite::params![size, forged],
    )
    .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Signature { size: s, .. } if *s == size as u64)),
        "{problems:?}"
    );
}

#[test]
fn a_ledger_resigned_with_another_key_fails_against_the_auditors_key() {
    let dir = sealed();
    let auditors_key = Reader::open(dir.path()).unwrap().vkey().unwrap();
    // The operator swaps in a new key and rewrites the public key file.
    let other = tempfile::tempdir().unwrap();
    ledger(other.path(), 1);
    std::fs::copy(
        other.path().join("ledger.pub"),
        dir.path().join("ledger.pub"),
    )
    .unwrap();
    assert!(!verify(dir.path()).is_empty());
    let problems = verify_with(
        dir.path(),
        &VerifyOptions {
            vkey: Some(auditors_key),
            ..VerifyOptions::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn edited_search_columns_are_found() {
    let dir = sealed();
    db(dir.path())
        .execute(
            "UPDATE entries SET principal = 'mallory' WHERE idx = 42",
            [],
        )
        .unwrap();
    assert_eq!(verify(dir.path()), vec![Problem::Columns { index: 42 }]);
}

#[test]
fn an_altered_proof_hash_is_found() {
    let dir = sealed();
    let id = tlog_tiles::stored_hash_index(3, 10) as i64;
    db(dir.path())
        .execute("UPDATE hashes SET hash = zeroblob(32) WHERE id = ?1", [id])
        .unwrap();
    let problems = verify(dir.path());
    assert!(
        problems.contains(&Problem::StoredHash { level: 3, node: 10 }),
        "{problems:?}"
    );
}
