//! Appending, sealing, reopening, proofs, crash recovery, content capture and attestations.

use std::io::BufRead;
use std::time::Duration;

use tandem_audit::{
    ChangeEntry, CheckRun, Content, Entry, FileChange, Filter, Ledger, Options, Principal, Reader,
    VerifyOptions, check_inclusion, verify_dsse,
};

use crate::support::{ledger, options, request};

#[test]
fn entries_read_back_in_order_and_by_user() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path(), 300);
    let reader = Reader::open(dir.path()).unwrap();
    let mut seen = Vec::new();
    reader
        .entries(&Filter::default(), |e| {
            seen.push(e.index);
            assert_eq!(e.sealed.i, e.index);
            assert_eq!(e.sealed.entry, request(e.index));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
    let mut alice = 0;
    reader
        .entries(
            &Filter {
                user: Some("alice".into()),
                ..Filter::default()
            },
            |e| {
                assert_eq!(e.sealed.entry.principal().user, "alice");
                alice += 1;
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(alice, 100);
    let mut newest = Vec::new();
    reader
        .entries(
            &Filter {
                limit: Some(2),
                ..Filter::default()
            },
            |e| {
                newest.push(e.index);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(newest, vec![299, 298]);
}

#[test]
fn a_reopened_ledger_continues_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path(), 150);
    let first = Reader::open(dir.path())
        .unwrap()
        .checkpoint()
        .unwrap()
        .unwrap();
    let ledger = Ledger::open(dir.path(), options()).unwrap();
    for i in 150..400 {
        assert_eq!(ledger.append(&request(i), None).unwrap(), i);
    }
    assert_eq!(ledger.close().unwrap(), 400);
    let report = Reader::open(dir.path())
        .unwrap()
        .verify(&VerifyOptions {
            trusted: vec![first],
            ..VerifyOptions::default()
        })
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 400);
}

#[test]
fn only_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let _ledger = Ledger::open(dir.path(), options()).unwrap();
    let second = Ledger::open(dir.path(), options());
    assert!(
        matches!(second, Err(tandem_audit::Error::Locked { .. })),
        "{second:?}"
    );
}

#[test]
fn concurrent_appends_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::sync::Arc::new(Ledger::open(dir.path(), options()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = std::sync::Arc::clone(&ledger);
            std::thread::spawn(move || {
                for i in 0..500 {
                    ledger.append(&request(t * 1000 + i), None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ledger.close().unwrap(), 4000);
    let report = Reader::open(dir.path())
        .unwrap()
        .verify(&VerifyOptions::default())
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 4000);
}

#[test]
fn inclusion_and_consistency_proofs_check_out() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path(), 1000);
    let reader = Reader::open(dir.path()).unwrap();
    for index in [0, 1, 511, 512, 999] {
        let proof = reader.prove_inclusion(index, None).unwrap();
        assert_eq!(proof.size, 1000);
        check_inclusion(&proof).unwrap();
        let mut wrong = proof.clone();
        wrong.leaf = "00".repeat(32);
        assert!(check_inclusion(&wrong).is_err());
    }
    let checkpoints = reader.checkpoints().unwrap();
    let (old, _) = checkpoints[checkpoints.len() / 2];
    let proof = reader.prove_consistency(old, None).unwrap();
    assert_eq!((proof.old_size, proof.size), (old, 1000));
    let hash = |s: &str| tlog_tiles::Hash(hex::decode(s).unwrap().try_into().unwrap());
    let path: Vec<_> = proof.proof.iter().map(|h| hash(h)).collect();
    tlog_tiles::check_tree(&path, 1000, hash(&proof.root), old, hash(&proof.old_root)).unwrap();
    assert!(reader.prove_inclusion(1000, None).is_err());
    assert!(reader.prove_consistency(2000, None).is_err());
}

#[test]
fn captured_content_is_purged_without_breaking_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(
        dir.path(),
        Options {
            capture: true,
            retention: None,
            ..options()
        },
    )
    .unwrap();
    for i in 0..10 {
        let content = Content {
            prompt: format!("prompt {i}"),
            answer: format!("answer {i}"),
        };
        ledger.append(&request(i), Some(content)).unwrap();
    }
    ledger.flush().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.content(3).unwrap().unwrap().answer, "answer 3");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(ledger.purge_content(Duration::ZERO).unwrap(), 10);
    ledger.close().unwrap();
    assert_eq!(reader.content(3).unwrap(), None);
    let report = reader.verify(&VerifyOptions::default()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn content_is_not_captured_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), options()).unwrap();
    let content = Content {
        prompt: "secret prompt".into(),
        answer: "secret answer".into(),
    };
    ledger.append(&request(0), Some(content)).unwrap();
    ledger.close().unwrap();
    assert!(!dir.path().join("content.db").exists());
    let db = std::fs::read(dir.path().join("ledger.db")).unwrap();
    assert!(!db.windows(13).any(|w| w == b"secret prompt"));
}

#[test]
fn accepted_changes_export_as_signed_in_toto_statements() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), options()).unwrap();
    let change = |accepted: bool| {
        Entry::Change(ChangeEntry {
            task: "task-1".into(),
            principal: Principal {
                user: "alice".into(),
                ..Principal::default()
            },
            tier: Some("deep".into()),
            requests: vec!["req-1".into()],
            files: vec![FileChange {
                path: "src/lib.rs".into(),
                sha256: Some("ab".repeat(32)),
                added: 3,
                removed: 1,
            }],
            diff_sha256: "cd".repeat(32),
            checks: vec![CheckRun {
                name: "test".into(),
                command: Some("cargo test".into()),
                passed: true,
                duration_ms: 1200,
            }],
            accepted,
            decided_by: Some("alice".into()),
            reason: Some("tests pass".into()),
            commit: Some("ef".repeat(20)),
            ..ChangeEntry::default()
        })
    };
    ledger.append(&request(0), None).unwrap();
    ledger.append(&change(true), None).unwrap();
    ledger.append(&change(false), None).unwrap();
    let vkey = ledger.key().vkey().to_owned();
    ledger.close().unwrap();
    let mut out = Vec::new();
    let count = Reader::open(dir.path())
        .unwrap()
        .attestations(&Filter::default(), &mut out)
        .unwrap();
    assert_eq!(count, 1, "only the accepted change");
    let envelope: serde_json::Value = serde_json::from_slice(out.trim_ascii()).unwrap();
    assert_eq!(envelope["payloadType"], tandem_audit::PAYLOAD_TYPE);
    let payload = verify_dsse(&vkey, &envelope).unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["name"], "src/lib.rs");
    assert_eq!(
        statement["subject"][1]["digest"]["gitCommit"],
        "ef".repeat(20)
    );
    assert_eq!(statement["predicate"]["ledger"]["index"], 1);
    assert_eq!(statement["predicate"]["checks"][0]["passed"], true);
    let mut tampered = envelope.clone();
    tampered["payload"] = serde_json::Value::String(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"{}",
    ));
    assert!(verify_dsse(&vkey, &tampered).is_err());
}

/// The child side of [`a_killed_writer_loses_no_returned_append`]: appends until killed, printing
/// each index once `append` has returned.
#[test]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var("TANDEM_AUDIT_CHILD_DIR") else {
        return;
    };
    let ledger = Ledger::open(std::path::Path::new(&dir), options()).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let idx = ledger.append(&request(i), None).unwrap();
        std::io::Write::write_all(&mut out, format!("appended {idx}\n").as_bytes()).unwrap();
        std::io::Write::flush(&mut out).unwrap();
    }
}

#[test]
fn a_killed_writer_loses_no_returned_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ledger::child_appends_until_killed",
            "--nocapture",
        ])
        .env("TANDEM_AUDIT_CHILD_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut last = None;
    while let Some(Ok(line)) = lines.next() {
        if let Some(idx) = line.strip_prefix("appended ") {
            let idx: u64 = idx.parse().unwrap();
            last = Some(idx);
            if idx >= 5_000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let last = last.expect("the child appended");
    // Reopening seals what the journal holds.
    let ledger = Ledger::open(dir.path(), options()).unwrap();
    let size = ledger.close().unwrap();
    assert!(
        size > last,
        "acknowledged {last} but the ledger has {size} entries"
    );
    let report = Reader::open(dir.path())
        .unwrap()
        .verify(&VerifyOptions::default())
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
