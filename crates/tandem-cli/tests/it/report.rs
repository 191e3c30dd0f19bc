//! `tandem demo` and `tandem report` as a newcomer runs them: the synthetic history, the report in
//! each format from it, and the refusals.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn tandem(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(dir)
        .env_remove("TANDEM_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn the_demo_writes_a_history_the_report_reads_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let out = tandem(
        &[
            "demo",
            "--dir",
            demo.to_str().unwrap(),
            "--days",
            "21",
            "--no-serve",
        ],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("A SYNTHETIC history"), "{stdout}");
    assert!(stdout.contains("\nall        all "), "{stdout}");
    assert!(demo.join("repo/.git").is_dir() && demo.join(".tandem-demo").is_file());
    let config = demo.join("tandem.toml");
    let config = config.to_str().unwrap();

    let out = tandem(
        &[
            "report", "--config", config, "--since", "21d", "--format", "json",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let all = rows
        .iter()
        .find(|r| r["class"] == "all" && r["tier"] == "all")
        .unwrap();
    let changes = all["changes"].as_u64().unwrap();
    let merged = all["merged"].as_u64().unwrap();
    assert!(changes >= 20 && merged > 0 && merged <= changes, "{all}");
    assert!(all["lead_time_h"]["p50"].as_f64().unwrap() > 0.0);
    assert!(all["requests"].as_u64().unwrap() > changes);
    // Every class row is one of the router's classes, and each class has its `all` row.
    for row in rows {
        let class = row["class"].as_str().unwrap();
        assert!(
            tandem_report::CLASSES.contains(&class) || class == "all",
            "{class}"
        );
        assert!(
            rows.iter()
                .any(|r| r["class"] == class && r["tier"] == "all")
        );
    }
    let repo = &report["repositories"][0];
    assert_eq!(repo["branch"], "main");
    assert!(repo["assisted"].as_u64().unwrap() > 0);
    assert!(
        report["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tier"] == "live")
    );
    assert!(report["weeks"].as_array().unwrap().len() >= 3);

    let html = tmp.path().join("report.html");
    let out = tandem(
        &[
            "report",
            "--config",
            config,
            "--since",
            "21d",
            "--format",
            "html",
            "-o",
            html.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"tandem-data\""));
    assert!(!page.contains("src=\"/ui/app.js\"") && !page.contains("href=\"/ui/app.css\""));
    assert!(!page.contains("<!--tandem:data-->"));

    // The same demo again replaces the earlier one.
    let out = tandem(
        &[
            "demo",
            "--dir",
            demo.to_str().unwrap(),
            "--days",
            "7",
            "--no-serve",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let out = tandem(
        &["demo", "--dir", mine.to_str().unwrap(), "--no-serve"],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an earlier demo"));
    assert!(mine.join("notes.txt").exists());

    let ledger = tmp.path().join("ledger");
    tandem_audit::Ledger::open(&ledger, tandem_audit::Options::default())
        .unwrap()
        .close()
        .unwrap();
    for (args, expected) in [
        (vec!["--format", "xml"], "--format must be"),
        (vec!["--since", "yesterday"], "is neither an age"),
        (
            vec!["--repo", "/nonexistent/repo"],
            "git: opening /nonexistent/repo",
        ),
    ] {
        let mut all = vec!["report", "--dir", ledger.to_str().unwrap()];
        all.extend(args);
        let out = tandem(&all, tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?}");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
    }
}
