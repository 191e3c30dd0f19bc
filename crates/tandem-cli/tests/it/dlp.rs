//! `tandem dlp scan` over files, directories and standard input: findings, masked previews, exit codes.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Split in the source so secret scanners do not flag this file.
const TOKEN: &str = concat!("ghp_", "R8fK2pLq9ZxT4mWv7NcB1yHs6DjQ3gUe5AoI");

fn scan(
    args: &[&str],
    dir: &std::path::Path,
    stdin: Option<&str>,
) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("dlp")
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn finds_secrets_in_a_tree_and_exits_1_with_masked_previews() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/clean.rs"),
        "fn main() { let token = get_token(); }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/leak.py"),
        format!("import os\n\nGITHUB = \"{TOKEN}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("allowed.py"),
        format!("X = \"{TOKEN}\"  # gitleaks:allow\n"),
    )
    .unwrap();
    let (code, out, err) = scan(&["."], dir.path(), None);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("src/leak.py:3:11: github-pat ghp_********"),
        "{out}"
    );
    assert!(!out.contains(TOKEN));
    assert!(!out.contains("allowed.py"), "inline allow: {out}");

    let (code, out, _) = scan(&["--json", "src"], dir.path(), None);
    assert_eq!(code, Some(1));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["rule"], "github-pat");
    assert_eq!(rows[0]["line"], 3);

    let (code, _, err) = scan(&["src/clean.rs"], dir.path(), None);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = scan(&["-"], dir.path(), Some(&format!("echo {TOKEN}\n")));
    assert_eq!(code, Some(1));
    assert!(out.starts_with("-:1:6: github-pat"), "{out}");
    let (code, _, _) = scan(
        &["--pii", "email"],
        dir.path(),
        Some("write to jane.doe@acmecorp.io\n"),
    );
    assert_eq!(code, Some(1));
    let (code, _, _) = scan(&[], dir.path(), Some("nothing to see\n"));
    assert_eq!(code, Some(0));
}

#[test]
fn custom_rules_and_bad_input_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rules]]\nid = \"acme-key\"\nregex = '''acme_[a-z0-9]{20}'''\nkeywords = [\"acme_\"]\n",
    )
    .unwrap();
    let (code, out, _) = scan(
        &["--rules", "rules.toml", "-"],
        dir.path(),
        Some("k = acme_0123456789abcdefghij\n"),
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("acme-key"), "{out}");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rules]]\nid = \"x\"\nregex = \"(\"\n",
    )
    .unwrap();
    let (code, _, err) = scan(&["--rules", "bad.toml", "-"], dir.path(), None);
    assert_eq!(code, Some(2), "errors are not findings");
    assert!(err.contains("invalid regex"), "{err}");
    let (code, _, err) = scan(&["no/such/dir"], dir.path(), None);
    assert_eq!(code, Some(2));
    assert!(err.contains("no such file"), "{err}");
    let (_, _, err) = scan(&["--pii", "ssn", "-"], dir.path(), None);
    assert!(err.contains("--pii `ssn`"), "{err}");
}
