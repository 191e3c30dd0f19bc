//! `tandem serve` under load, killed with SIGKILL: every request a client got a complete answer for
//! is in the audit ledger afterwards, and the ledger verifies. Then `tandem audit` reads, proves,
//! exports and catches an edit made behind its back.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(20);

/// Starts `tandem serve` on a config in `dir`; returns the child and its base URL.
fn serve(dir: &std::path::Path, upstream: &str) -> (Child, String) {
    let config = dir.join("tandem.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
state_dir = {state:?}
[[providers]]
name = "tk"
kind = "openai"
base_url = "http://{upstream}/v1"
[telemetry]
log_format = "json"
"#,
            state = dir.join("state").display().to_string(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("TANDEM_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if log["fields"]["message"] == "tandem serve listening"
                && let Some(addr) = log["fields"]["addr"].as_str()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(PATIENCE)
        .expect("tandem serve did not start");
    (child, format!("http://{addr}"))
}

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
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve(dir.path(), &upstream.addr().to_string());

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
    child.kill().unwrap();
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    let shown = audit(dir.path(), &["show", "--json"]);
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

    let verified = audit(dir.path(), &["verify"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    assert!(report.starts_with("ok: "), "{report}");

    let proof = audit(dir.path(), &["prove", "--index", "3"]);
    assert!(
        proof.status.success(),
        "{}",
        String::from_utf8_lossy(&proof.stderr)
    );
    let proof: Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert_eq!(proof["index"], 3);
    let checkpoint = audit(dir.path(), &["checkpoint"]);
    let note = String::from_utf8(checkpoint.stdout).unwrap();
    assert!(note.starts_with("tandem/audit\n"), "{note}");
    assert!(note.contains("\n\n— tandem/audit "), "{note}");
    let exported = audit(dir.path(), &["export", "--format", "jsonl"]);
    assert_eq!(
        String::from_utf8(exported.stdout).unwrap().lines().count(),
        entries.len()
    );

    // Edit one answered request behind the ledger's back.
    let db = rusqlite::Connection::open(dir.path().join("state/audit/ledger.db")).unwrap();
    db.execute(
        "UPDATE entries SET body = CAST(replace(CAST(body AS TEXT), '\"status\":200', '\"status\":201') AS BLOB) WHERE idx = 7",
        [],
    )
    .unwrap();
    let verified = audit(dir.path(), &["verify"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL entry 7: edited"), "{report}");
}
