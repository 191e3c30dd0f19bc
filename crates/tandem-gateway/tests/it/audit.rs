//! The audit ledger through the gateway: one entry per exchange, answered or refused, with the
//! principal, client, routing, policy decisions, DLP findings and keyed hashes but no text; content
//! capture keeps redacted text apart; the ledger verifies.

use serde_json::json;
use tandem_audit::{Entry, Reader, VerifyOptions};

use crate::support::{Harness, Options};

/// A fake GitHub token (format-valid, never live), split so scanners leave this file alone.
const TOKEN: &str = concat!("ghp_", "R8fK2pLq9ZxT4mWv7NcB1yHs6DjQ3gUe5AoI");

fn request(entry: &tandem_audit::Sealed) -> &tandem_audit::RequestEntry {
    match &entry.entry {
        Entry::Request(r) => r,
        Entry::Change(_) => panic!("not a request entry"),
    }
}

#[tokio::test]
async fn every_exchange_is_an_entry_with_hashes_and_no_text() {
    let h = Harness::start().await;
    let prompt = format!("push with {TOKEN} please");
    for stream in [false, true] {
        let resp = h
            .post(
                "/v1/chat/completions",
                &json!({"model": "scripted", "stream": stream, "messages": [{"role": "user", "content": prompt}]}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap();
    }
    // Refused before routing: malformed.
    let resp = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "scripted", "bogus": 1}),
        )
        .await;
    assert_eq!(resp.status(), 400);

    let entries = h.audit_entries();
    assert_eq!(entries.len(), 3);
    let (plain, streamed, refused) = (
        request(&entries[0]),
        request(&entries[1]),
        request(&entries[2]),
    );
    for r in [plain, streamed] {
        assert_eq!(r.status, 200);
        assert_eq!(r.outcome, "ok");
        assert_eq!(r.principal.user, "anonymous");
        assert!(
            r.target
                .as_deref()
                .is_some_and(|t| t.ends_with("/scripted")),
            "{r:?}"
        );
        assert_eq!(r.policy.len(), 1);
        assert!(r.policy[0].allowed);
        assert_eq!(r.dlp[0].rule, "github-pat");
        assert_eq!(r.dlp[0].action, "redact");
        assert!(r.tokens.output > 0 && r.tokens.exact);
        assert_eq!(r.prompt_hash.as_deref().map(str::len), Some(64));
    }
    assert!(streamed.stream && !plain.stream);
    assert!(streamed.ttft_ms.is_some());
    // The same answer streamed or not hashes alike.
    assert_eq!(plain.answer_hash, streamed.answer_hash);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.outcome, "error");
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("bogus")),
        "{refused:?}"
    );
    assert!(refused.answer_hash.is_none());

    let raw = std::fs::read(h.audit_dir().join("ledger.db")).unwrap();
    for text in [TOKEN.as_bytes(), b"push with".as_slice()] {
        assert!(
            !raw.windows(text.len()).any(|w| w == text),
            "text in the ledger"
        );
    }
    let report = Reader::open(&h.audit_dir())
        .unwrap()
        .verify(&VerifyOptions::default())
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 3);
}

#[tokio::test]
async fn captured_content_is_redacted_and_kept_apart() {
    let h = Harness::with(Options {
        extra_toml: "[audit]\ncapture = true\n".into(),
        ..Options::default()
    })
    .await;
    let prompt = format!("push with {TOKEN} please");
    for stream in [false, true] {
        let resp = h
            .post(
                "/v1/chat/completions",
                &json!({"model": "scripted?say=hello%20there", "stream": stream, "messages": [{"role": "user", "content": prompt}]}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap();
    }
    h.audit_entries();
    let reader = Reader::open(&h.audit_dir()).unwrap();
    for index in [0, 1] {
        let content = reader.content(index).unwrap().expect("captured");
        assert!(
            content.prompt.contains("push with [REDACTED:github-pat:"),
            "{}",
            content.prompt
        );
        assert!(!content.prompt.contains(TOKEN));
        assert_eq!(content.answer, "hello there");
    }
    let raw = std::fs::read(h.audit_dir().join("ledger.db")).unwrap();
    assert!(
        !raw.windows(9).any(|w| w == b"push with"),
        "text in the ledger itself"
    );
}
