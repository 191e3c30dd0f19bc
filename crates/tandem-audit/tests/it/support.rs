//! Shared helpers: sample entries and a sealed ledger in a temporary directory.

use std::path::Path;

use tandem_audit::{Entry, Ledger, Options, Principal, RequestEntry, Tokens};

pub fn request(n: u64) -> Entry {
    Entry::Request(RequestEntry {
        id: format!("req-{n}"),
        started_at_ms: 1_700_000_000_000 + n as i64,
        principal: Principal {
            user: if n.is_multiple_of(3) {
                "alice".into()
            } else {
                "bob".into()
            },
            teams: vec!["platform".into()],
            project: None,
            key_id: Some("k1".into()),
        },
        api: "responses".into(),
        stream: true,
        model: "tandem-live".into(),
        tier: Some("live".into()),
        target: Some("cerebras/gpt-oss-120b".into()),
        route_reason: Some("alias".into()),
        class: None,
        status: 200,
        outcome: "ok".into(),
        tokens: Tokens {
            input: 100 + n,
            output: 5,
            cached_input: 0,
            reasoning: 0,
            exact: true,
        },
        cost_usd: 0.0001,
        latency_ms: 40,
        ttft_ms: Some(3),
        prompt_hash: Some("ab".repeat(32)),
        answer_hash: Some("cd".repeat(32)),
        ..RequestEntry::default()
    })
}

pub fn options() -> Options {
    Options {
        checkpoint_every: 100,
        ..Options::default()
    }
}

/// A ledger of `n` request entries, appended in batches so that there are many checkpoints.
pub fn ledger(dir: &Path, n: u64) {
    let ledger = Ledger::open(dir, options()).unwrap();
    for i in 0..n {
        ledger.append(&request(i), None).unwrap();
        if i % 37 == 36 {
            ledger.flush().unwrap();
        }
    }
    assert_eq!(ledger.close().unwrap(), n);
}

pub fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("ledger.db")).unwrap()
}

pub fn body(conn: &rusqlite::Connection, idx: i64) -> String {
    conn.query_row("SELECT body FROM entries WHERE idx = ?1", [idx], |r| {
        r.get::<_, Vec<u8>>(0)
    })
    .map(|b| String::from_utf8(b).unwrap())
    .unwrap()
}

pub fn set_body(conn: &rusqlite::Connection, idx: i64, body: &str) {
    conn.execute(
        "UPDATE entries SET body = ?2 WHERE idx = ?1",
        rusqlite::params![idx, body.as_bytes()],
    )
    .unwrap();
}
