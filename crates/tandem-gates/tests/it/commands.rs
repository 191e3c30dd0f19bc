//! Command gates run for real with `PlainRunner`: pass, fail, timeout, and the output tail.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use tandem_gates::{Change, OUTPUT_TAIL_BYTES, PlainRunner, Runner, command_gate, passed, run_all};

use crate::support::{Licenses, config};

fn change(dir: &std::path::Path) -> Change {
    Change {
        workspace: dir.to_path_buf(),
        diff: String::new(),
        manifests: Vec::new(),
    }
}

#[test]
fn passing_test_command_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "ok").unwrap();
    // The command runs in the workspace.
    let config = config(
        Some("cat marker && echo tests passed"),
        Duration::from_secs(10),
    );
    let results = run_all(
        &config,
        &change(dir.path()),
        &PlainRunner,
        &Licenses::default(),
    );
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["dlp", "test"]);
    let test = &results[1];
    assert_eq!(
        test.command.as_deref(),
        Some("cat marker && echo tests passed")
    );
    assert!(test.passed, "{test:?}");
    assert_eq!(test.output_tail, "oktests passed\n");
    assert!(test.findings.is_empty());
    assert!(passed(&results));
}

#[test]
fn failing_test_command_fails_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        Some("echo 'test foo ... FAILED'; echo 'oh no' >&2; exit 3"),
        Duration::from_secs(10),
    );
    let results = run_all(
        &config,
        &change(dir.path()),
        &PlainRunner,
        &Licenses::default(),
    );
    let test = results.iter().find(|r| r.name == "test").unwrap();
    assert!(!test.passed);
    assert_eq!(test.output_tail, "test foo ... FAILED\noh no\n");
    assert_eq!(test.findings, ["exited with status 3"]);
    assert!(!passed(&results));
}

#[test]
fn command_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // A child of the shell holds the output pipe too: the whole group must go.
    let result = command_gate(
        "test",
        "echo started; sleep 30 & sleep 30",
        dir.path(),
        Duration::from_millis(300),
        &PlainRunner,
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{result:?}");
    assert!(!result.passed);
    assert_eq!(result.output_tail, "started\n");
    assert_eq!(result.findings, ["timed out after 0.3s"]);
}

#[test]
fn background_process_does_not_hold_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = PlainRunner
        .run("sleep 30 & echo done", dir.path(), Duration::from_secs(20))
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.success());
    assert_eq!(out.output, b"done\n");
}

#[test]
fn output_tail_keeps_the_last_four_kilobytes() {
    let dir = tempfile::tempdir().unwrap();
    let result = command_gate(
        "lint",
        "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done; echo last; exit 1",
        dir.path(),
        Duration::from_secs(20),
        &PlainRunner,
    );
    assert!(!result.passed);
    assert!(result.output_tail.len() <= OUTPUT_TAIL_BYTES);
    assert!(result.output_tail.len() > OUTPUT_TAIL_BYTES - 16);
    assert!(result.output_tail.ends_with("line 1999\nlast\n"));
}

#[test]
fn missing_workspace_is_a_failed_gate() {
    let result = command_gate(
        "test",
        "true",
        std::path::Path::new("/nonexistent/tandem-gates"),
        Duration::from_secs(5),
        &PlainRunner,
    );
    assert!(!result.passed);
    assert!(
        result.findings[0].starts_with("cannot run `true`"),
        "{result:?}"
    );
}
