//! Attestations: an accepted change as an in-toto v1 Statement whose subjects are the files it
//! produced (and its commit), with a Tandem predicate naming the ledger entry that records it.

use serde_json::{Value, json};

use crate::entry::ChangeEntry;
use crate::reader::Stored;

/// The DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The predicate type of Tandem change attestations.
pub const PREDICATE_TYPE: &str = "https://tandem.dev/attestation/change/v1";

/// The in-toto v1 Statement for an accepted change recorded at `stored`.
pub(crate) fn statement(stored: &Stored, change: &ChangeEntry) -> Value {
    let mut subject: Vec<Value> = change
        .files
        .iter()
        .filter_map(|f| {
            f.sha256
                .as_ref()
                .map(|sha| json!({"name": f.path, "digest": {"sha256": sha}}))
        })
        .collect();
    if let Some(commit) = &change.commit {
        subject.push(json!({"name": "commit", "digest": {"gitCommit": commit}}));
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "ledger": {
                "index": stored.index,
                "leaf": hex::encode(tlog_tiles::record_hash(&stored.body).0),
                "appendedAtMs": stored.sealed.ts,
            },
            "task": change.task,
            "principal": change.principal,
            "tier": change.tier,
            "requests": change.requests,
            "repository": change.repository,
            "files": change.files,
            "diffSha256": change.diff_sha256,
            "checks": change.checks,
            "decidedBy": change.decided_by,
            "reason": change.reason,
        },
    })
}
