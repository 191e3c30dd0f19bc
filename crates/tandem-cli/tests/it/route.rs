//! `tandem route explain` and `tandem route eval` on the shipped trace.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tandem(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(dir)
        .env_remove("TANDEM_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn explain_names_the_decision_and_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("r.json");
    std::fs::write(
        &request,
        r#"{"model":"auto","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"migrate src/a.rs src/b.rs src/c.rs to the new API"}]}],"stream":true}"#,
    )
    .unwrap();
    let (ok, out, err) = tandem(&["route", "explain", request.to_str().unwrap()], dir.path());
    assert!(ok, "{err}");
    assert!(out.starts_with("decision: deep (rule:"), "{out}");
    assert!(out.contains("[MATCH] multi-file -> deep"), "{out}");
    let (ok, _, err) = tandem(&["route", "explain", "missing.json"], dir.path());
    assert!(!ok && err.contains("missing.json"), "{err}");
}

#[test]
fn eval_on_the_shipped_trace_beats_random_and_trains_a_scorer() {
    let dir = tempfile::tempdir().unwrap();
    let trace = repo().join("bench/route/trace.jsonl");
    let weights = dir.path().join("w.json");
    let (ok, out, err) = tandem(
        &[
            "route",
            "eval",
            trace.to_str().unwrap(),
            "--json",
            "--train",
            weights.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let policies = report["policies"].as_array().unwrap();
    let apgr = |name: &str| {
        policies.iter().find(|p| p["name"] == name).unwrap()["apgr"]
            .as_f64()
            .unwrap()
    };
    assert!(apgr("router") > apgr("random"), "{out}");
    // The trained weights load back as a scorer.
    let config = dir.path().join("tandem.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             [tiers.live]\n[[tiers.live.targets]]\nprovider = \"p\"\nmodel = \"l\"\n\
             [tiers.deep]\n[[tiers.deep.targets]]\nprovider = \"p\"\nmodel = \"d\"\n\
             [router]\nscorer = {:?}\n",
            weights.display().to_string()
        ),
    )
    .unwrap();
    let (ok, out, err) = tandem(
        &[
            "route",
            "eval",
            trace.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("| router |"), "{out}");
}
