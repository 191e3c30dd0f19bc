//! `tandem task` end to end: a scripted deep model reads, patches and runs a command in the
//! sandbox, finishes, fails the project's test gate, fixes the file and finishes again; the change
//! is committed with trailers and its gates and model calls are in the audit ledger.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{Serve, commit_all, git, init_repo, url_encode};

fn patch(from: &str, to: &str) -> String {
    format!(
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n-status: {from}\n+status: {to}\n*** End Patch\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_tools_in_the_sandbox_fails_a_gate_fixes_it_and_commits() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    std::fs::write(root.join("notes.txt"), "status: broken\n").unwrap();
    std::fs::write(
        root.join("tandem.toml"),
        "[gates]\ntest = \"grep -q 'status: fixed' notes.txt\"\n",
    )
    .unwrap();
    commit_all(root);
    let turns = json!([
        {"tool": "run", "args": {"command": "cat notes.txt; echo escape > /etc/tandem-task-escape || echo sandboxed"}},
        {"tool": "apply_patch", "args": {"patch": patch("broken", "half")}},
        {"tool": "finish", "args": {"summary": "first try"}},
        {"tool": "apply_patch", "args": {"patch": patch("half", "fixed")}},
        {"tool": "finish", "args": {"summary": "fixed the notes"}},
    ]);
    let model = format!("scripted?turns={}", url_encode(&turns.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "task",
            "--server",
            &serve.base,
            "--model",
            &model,
            "fix the notes",
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
        stderr.contains("→ run") && stderr.contains("exit 0"),
        "{stderr}"
    );
    assert!(stderr.contains("✗ gates failed: test"), "{stderr}");
    assert!(stderr.contains("✓ gates passed"), "{stderr}");
    assert!(stdout.contains("fixed the notes"), "{stdout}");
    assert!(
        stdout.contains("after 5 turn(s) and 1 fix round(s)"),
        "{stdout}"
    );
    assert!(
        !Path::new("/etc/tandem-task-escape").exists(),
        "the run tool is sandboxed"
    );
    // The command's output went back to the model.
    let requests = upstream.requests();
    let second = requests[1]["messages"].to_string();
    assert!(
        second.contains("status: broken") && second.contains("sandboxed"),
        "{second}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "status: fixed\n"
    );
    let message = git(root, &["log", "-1", "--format=%B", "tandem/fix-the-notes"]);
    assert!(message.contains("with `tandem task`"), "{message}");
    assert!(message.contains("- test: passed"), "{message}");
    assert!(message.contains("Tandem-Ledger: "), "{message}");
    assert_eq!(
        git(root, &["show", "tandem/fix-the-notes:notes.txt"]),
        "status: fixed\n"
    );
    // The session was saved where git does not see it.
    assert!(
        git(root, &["status", "--porcelain"])
            .lines()
            .all(|l| l.ends_with("notes.txt"))
    );
    let saved = std::fs::read_dir(root.join(".git/tandem/tasks"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cut_short_resumes_where_it_stopped() {
    let upstream = crate::support::upstream().await;
    let serve = Serve::with_upstream(&upstream).await;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init_repo(root);
    std::fs::write(root.join("notes.txt"), "status: broken\n").unwrap();
    commit_all(root);
    let turns = json!([
        {"tool": "run", "args": {"command": "cat notes.txt"}},
        {"tool": "apply_patch", "args": {"patch": patch("broken", "fixed")}},
        {"tool": "finish", "args": {"summary": "resumed and fixed"}},
    ]);
    let model = format!("scripted?turns={}", url_encode(&turns.to_string()));
    let task = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["task", "--server", &serve.base, "--model", &model])
            .args(extra)
            .current_dir(root)
            .env_remove("TANDEM_API_KEY")
            .output()
            .unwrap()
    };
    // Two model calls only: the task stops before it finishes and says how to resume.
    let first = task(&["--max-turns", "2", "fix the notes"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    let id = stderr
        .split("tandem task --resume ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .unwrap_or_else(|| panic!("no resume hint in {stderr}"))
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "status: fixed\n",
        "its work so far stays"
    );
    let second = task(&["--resume", &id]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(stdout.contains("resumed and fixed"), "{stdout}");
    // The resumed conversation carried on: the third call saw both earlier turns.
    let requests = upstream.requests();
    let last = requests.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        last >= 6,
        "system, goal, two assistant turns and their tool results: {last}"
    );
    let message = git(root, &["log", "-1", "--format=%B", "tandem/fix-the-notes"]);
    assert!(message.contains(&format!("Tandem-Task: {id}")), "{message}");
}
