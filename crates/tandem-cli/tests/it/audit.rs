//! `tandem serve` under load, killed with SIGKILL: every request a client got a complete answer for
//! is in the audit ledger afterwards, and the ledger verifies. Then `tandem audit` reads, proves,
//! exports and catches an edit made behind its back.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{PATIENCE, Serve};

fn audit(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("audit")
        .args(args)
        .arg("--dir")
        .arg(dir.join("state").join("audit"))
        .output()
        .unwrap()
}

/// One request; its id when the client got a complete answer.
async fn ask(client: &reqwest::Client, base: &str, n: usize) -> Option<String> {
    let stream = n.is_multiple_of(2);
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({
            "model": "m",
            "stream": stream,
            "messages": [{"role": "user", "content": format!("question {n}")}],
        }))
        .send()
        .await
        .ok()?;
    if resp.status() != 200 {
        return None;
    }
    let id = resp
        .headers()
        .get("x-request-id")?
        .to_str()
        .ok()?
        .to_owned();
    let body = resp.text().await.ok()?;
    let complete = if stream {
        body.trim_end().ends_with("data: [DONE]")
    } else {
        serde_json::from_str::<Value>(&body)
            .is_ok_and(|v| v["choices"][0]["finish_reason"] == "stop")
    };
    complete.then_some(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_no_answered_request_and_the_ledger_verifies() {
    let upstream = tandem_testkit::spawn(tandem_testkit::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens_per_sec: 4_000.0,
        default_tokens: 16,
    })
    .await
    .unwrap();
    let mut serve = Serve::start(
        &format!(
            "[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n[telemetry]\nlog_format = \"json\"\n",
            upstream.addr()
        ),
        &[],
    )
    .await;
    let base = serve.base.clone();

    let answered = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .user_agent("audit-e2e/1.0")
        .build()
        .unwrap();
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, base, answered, stop) = (
            client.clone(),
            base.clone(),
            Arc::clone(&answered),
            Arc::clone(&stop),
        );
        workers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(id) = ask(&client, &base, n).await {
                    answered.lock().unwrap().push(id);
                }
                n += 16;
            }
        }));
    }
    let deadline = Instant::now() + PATIENCE;
    while answered.lock().unwrap().len() < 400 {
        assert!(Instant::now() < deadline, "the gateway answered too little");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Mid-load: requests are in flight.
    serve.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    let shown = audit(serve.dir(), &["show", "--json"]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let entries: Vec<Value> = String::from_utf8(shown.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let recorded: std::collections::HashSet<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "request" && e["outcome"] == "ok")
        .filter_map(|e| e["id"].as_str())
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests are not in the ledger: {lost:?}",
        lost.len(),
        answered.len()
    );
    let entry = &entries[0];
    assert_eq!(entry["principal"]["user"], "anonymous");
    assert_eq!(entry["target"], "tk/m");
    assert_eq!(entry["prompt_hash"].as_str().map(str::len), Some(64));
    assert_eq!(entry["answer_hash"].as_str().map(str::len), Some(64));
    assert_eq!(entry["client"], "audit-e2e/1.0");
    assert!(
        !entries.iter().any(|e| e.to_string().contains("question ")),
        "no prompt text in the ledger"
    );

    let verified = audit(serve.dir(), &["verify"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    assert!(report.starts_with("ok: "), "{report}");

    let proof = audit(serve.dir(), &["prove", "--index", "3"]);
    assert!(
        proof.status.success(),
        "{}",
        String::from_utf8_lossy(&proof.stderr)
    );
    let proof: Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert_eq!(proof["index"], 3);
    let checkpoint = audit(serve.dir(), &["checkpoint"]);
    let note = String::from_utf8(checkpoint.stdout).unwrap();
    assert!(note.starts_with("tandem/audit\n"), "{note}");
    assert!(note.contains("\n\n— tandem/audit "), "{note}");
    let exported = audit(serve.dir(), &["export", "--format", "jsonl"]);
    assert_eq!(
        String::from_utf8(exported.stdout).unwrap().lines().count(),
        entries.len()
    );

    // Edit one answered request behind the ledger's back.
    let db = rusqlite::Connection::open(serve.dir().join("state/audit/ledger.db")).unwrap();
    db.execute(
        "UPDATE entries SET body = CAST(replace(CAST(body AS TEXT), '\"status\":200', '\"status\":201') AS BLOB) WHERE idx = 7",
        [],
    )
    .unwrap();
    let verified = audit(serve.dir(), &["verify"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL entry 7: edited"), "{report}");
}
