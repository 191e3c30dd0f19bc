//! `tandem edit --yes` end to end: the test upstream scripts a SEARCH/REPLACE answer; the edit is
//! applied, recorded in the audit ledger through `tandem serve`, and committed on `tandem/<slug>`
//! with provenance trailers that point at the ledger entry.

use std::process::Command;

use serde_json::Value;

use crate::support::{Serve, commit_all, git, init_repo, url_encode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_edit_is_applied_recorded_and_committed_with_trailers() {
    let upstream = crate::support::upstream().await;
    let mut serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    std::fs::create_dir(root.join("src")).unwrap();
    let original = "pub fn answer() -> u32 {\n    41\n}\n\npub fn other() {}\n";
    std::fs::write(root.join("src/lib.rs"), original).unwrap();
    // The project's gate runs in the sandbox after the edit is written.
    std::fs::write(
        root.join("tandem.toml"),
        "[gates]\nlive = true\ntest = \"grep -q 42 src/lib.rs\"\n",
    )
    .unwrap();
    commit_all(root);
    let head = git(root, &["rev-parse", "HEAD"]);

    let answer = "src/lib.rs\n<<<<<<< SEARCH\npub fn answer() -> u32 {\n    41\n=======\npub fn answer() -> u32 {\n    42\n>>>>>>> REPLACE\n";
    let model = format!("scripted?say={}", url_encode(answer));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["edit", "--yes", "--server", &serve.base, "--model", &model])
        .args(["make answer return 42", "src/lib.rs"])
        .current_dir(root.join("src").parent().unwrap())
        .env_remove("TANDEM_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-    41\n+    42"), "{stdout}");
    assert!(
        stdout.contains("on tandem/make-answer-return-42"),
        "{stdout}"
    );
    let edited = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert_eq!(edited, original.replace("41", "42"));
    // The person's branch is untouched; the commit is on the tandem branch, on top of it.
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    let message = git(
        root,
        &["log", "-1", "--format=%B", "tandem/make-answer-return-42"],
    );
    assert!(message.starts_with("make answer return 42\n"), "{message}");
    assert!(message.contains("Initiated by Ada"), "{message}");
    assert!(message.contains("- src/lib.rs (+1 -1)"), "{message}");
    assert!(message.contains("Assisted-by: tandem:"), "{message}");
    assert!(message.contains("- test: passed"), "{message}");
    assert!(message.contains("- dlp: passed"), "{message}");
    let trailer = |name: &str| {
        message
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {message}"))
            .to_owned()
    };
    let ledger_index: u64 = trailer("Tandem-Ledger").parse().unwrap();
    let task = trailer("Tandem-Task");
    assert_eq!(
        git(root, &["show", "tandem/make-answer-return-42:src/lib.rs"]),
        edited
    );
    assert_eq!(
        git(root, &["rev-parse", "tandem/make-answer-return-42^"]),
        head
    );

    serve.stop().await;
    let shown = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["audit", "show", "--json", "--dir"])
        .arg(serve.dir().join("state/audit"))
        .output()
        .unwrap();
    let entries: Vec<Value> = String::from_utf8(shown.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let change = entries
        .iter()
        .find(|e| e["kind"] == "change")
        .expect("a change entry");
    assert_eq!(change["i"].as_u64(), Some(ledger_index));
    assert_eq!(change["task"], task.as_str());
    assert_eq!(change["accepted"], true);
    assert_eq!(change["decided_by"], "Ada");
    let checks: Vec<(&str, bool)> = change["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert!(
        checks.contains(&("test", true)) && checks.contains(&("dlp", true)),
        "{checks:?}"
    );
    assert_eq!(change["files"][0]["path"], "src/lib.rs");
    use sha2::Digest as _;
    assert_eq!(
        change["files"][0]["sha256"],
        hex::encode(sha2::Sha256::digest(edited.as_bytes()))
    );
    let request = change["requests"][0].as_str().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "request" && e["id"] == request),
        "the model call is in the ledger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_cancels_the_upstream_at_once_and_changes_nothing() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("notes.txt"), "one\n").unwrap();
    // A long answer at 1,000 tokens per second: about 100 s unless interrupted.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "edit",
            "--yes",
            "--server",
            &serve.base,
            "--model",
            "scripted?tokens=100000&rate=1000",
        ])
        .args(["--no-escalate", "rewrite the notes", "notes.txt"])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_for_tokens(&upstream, 50).await;
    let pid = child.id().unwrap().to_string();
    let interrupted = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    while upstream.stats().streams_cancelled < 1 {
        assert!(
            interrupted.elapsed() < std::time::Duration::from_secs(5),
            "the upstream was not cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let cancelled_after = interrupted.elapsed();
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "one\n"
    );
    let stats = upstream.stats();
    assert_eq!((stats.streams_completed, stats.streams_cancelled), (0, 1));
    // Printed for the record; the bound is loose so a busy CI machine does not fail it.
    eprintln!(
        "upstream cancelled {} ms after SIGINT",
        cancelled_after.as_millis()
    );
    assert!(
        cancelled_after < std::time::Duration::from_millis(1000),
        "{cancelled_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steer_stops_the_answer_and_redirects_it() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    std::fs::write(root.join("lib.rs"), "pub fn answer() -> u32 {\n    41\n}\n").unwrap();
    commit_all(root);
    // The scripted model echoes the last user message, slowly: the first answer is the prompt
    // itself (no edit), the answer after the steer is the steer, which carries the edit.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "edit",
            "--yes",
            "--steer",
            "--server",
            &serve.base,
            "--model",
            "scripted?echo&rate=100",
        ])
        .args(["make answer return 42", "lib.rs"])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for_tokens(&upstream, 5).await;
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stdin,
        b"lib.rs\n<<<<<<< SEARCH\n    41\n=======\n    43\n>>>>>>> REPLACE\n\n",
    )
    .await
    .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("steered: lib.rs"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(root.join("lib.rs")).unwrap(),
        "pub fn answer() -> u32 {\n    43\n}\n"
    );
    let stats = upstream.stats();
    assert_eq!(
        (stats.streams_cancelled, stats.streams_completed),
        (1, 1),
        "{stats:?}"
    );
    // The redirected call carried what had been generated and the new instruction.
    let second = upstream.requests().last().unwrap().clone();
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(messages[messages.len() - 2]["role"], "assistant");
    assert!(
        messages[messages.len() - 1]["content"]
            .as_str()
            .unwrap()
            .contains("I stopped your answer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_fails_a_gate_is_not_kept() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    let original = "pub fn answer() -> u32 {\n    41\n}\n";
    std::fs::write(root.join("lib.rs"), original).unwrap();
    std::fs::write(
        root.join("tandem.toml"),
        "[gates]\nlive = true\ntest = \"! grep -q 'todo!' lib.rs\"\n",
    )
    .unwrap();
    commit_all(root);
    let answer = "lib.rs\n<<<<<<< SEARCH\n    41\n=======\n    todo!()\n>>>>>>> REPLACE\n";
    let model = format!("scripted?say={}", url_encode(answer));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "edit",
            "--yes",
            "--server",
            &serve.base,
            "--model",
            &model,
            "finish answer",
            "lib.rs",
        ])
        .current_dir(root)
        .env_remove("TANDEM_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gates failed: test"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("lib.rs")).unwrap(),
        original
    );
    assert!(
        git(root, &["branch", "--list", "tandem/*"])
            .trim()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_the_router_sends_deep_is_handed_to_the_task_agent() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    for name in ["a.rs", "b.rs", "c.rs"] {
        std::fs::write(root.join(name), "fn parse() {}\n").unwrap();
    }
    commit_all(root);
    let patch = "*** Begin Patch\n*** Update File: a.rs\n@@\n-fn parse() {}\n+fn parse_all() {}\n*** End Patch\n";
    let turns = serde_json::json!([
        {"tool": "apply_patch", "args": {"patch": patch}},
        {"tool": "finish", "args": {"summary": "renamed"}},
    ]);
    let model = format!("scripted?turns={}", url_encode(&turns.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["edit", "--yes", "--server", &serve.base, "--model", &model])
        .args([
            "rename parse to parse_all in a.rs, b.rs and c.rs",
            "a.rs",
            "b.rs",
            "c.rs",
        ])
        .current_dir(root)
        .env_remove("TANDEM_API_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("handing over to the deep agent: rule:multi-file"),
        "{stderr}"
    );
    let branch = git(
        root,
        &["branch", "--list", "--format=%(refname:short)", "tandem/*"],
    );
    let branch = branch.trim();
    assert!(
        branch.starts_with("tandem/rename-parse-to-parse-all"),
        "{branch}"
    );
    let message = git(root, &["log", "-1", "--format=%B", branch]);
    assert!(message.contains("with `tandem task`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_can_run_the_governed_pipeline_in_process() {
    let upstream = crate::support::upstream().await;
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstate_dir = {:?}\n[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n",
            state.path().join("state").display().to_string(),
            upstream.addr()
        ),
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    std::fs::write(root.join("lib.rs"), "pub fn answer() -> u32 {\n    41\n}\n").unwrap();
    commit_all(root);
    let answer = "lib.rs\n<<<<<<< SEARCH\n    41\n=======\n    42\n>>>>>>> REPLACE\n";
    let model = format!("scripted?say={}", url_encode(answer));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["edit", "--yes", "--in-process", "--config"])
        .arg(&config)
        .args(["--model", &model, "make answer return 42", "lib.rs"])
        .current_dir(root)
        .env_remove("TANDEM_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("committed"), "{stdout}");
    // The in-process gateway governed the call: its ledger holds the model call and the change.
    let shown = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["audit", "show", "--json", "--dir"])
        .arg(state.path().join("state/audit"))
        .output()
        .unwrap();
    let kinds: Vec<String> = String::from_utf8(shown.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, vec!["request", "change"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_blocks_that_do_not_apply_fall_back_to_a_predicted_whole_file_rewrite() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    let original = "pub fn answer() -> u32 {\n    41\n}\n";
    std::fs::write(root.join("lib.rs"), original).unwrap();
    commit_all(root);
    let turns = serde_json::json!([
        {"say": "lib.rs\n<<<<<<< SEARCH\n    40\n=======\n    42\n>>>>>>> REPLACE\n"},
        {"say": "lib.rs\n```rust\npub fn answer() -> u32 {\n    42\n}\n```\n"},
    ]);
    let model = format!("scripted?turns={}", url_encode(&turns.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "edit",
            "--yes",
            "--server",
            &serve.base,
            "--model",
            &model,
            "make answer return 42",
            "lib.rs",
        ])
        .current_dir(root)
        .env_remove("TANDEM_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("asking for the whole of lib.rs"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("lib.rs")).unwrap(),
        original.replace("41", "42")
    );
    // The rewrite request carried the original file as its predicted output.
    let requests = upstream.requests();
    let rewrite = requests.last().unwrap();
    assert_eq!(rewrite["prediction"]["type"], "content");
    assert_eq!(rewrite["prediction"]["content"], original);
}
