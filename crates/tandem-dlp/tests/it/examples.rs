//! The default rules against their labelled examples (`rules/examples.toml`): every rule finds its
//! positives, and no rule fires on the negatives.

use serde::Deserialize;
use tandem_dlp::{PiiConfig, Rules, Scanner};

#[derive(Deserialize)]
struct File {
    example: Vec<Example>,
    #[serde(default)]
    negatives: Vec<String>,
}

#[derive(Deserialize)]
struct Example {
    rule: String,
    positive: Vec<String>,
    #[serde(default)]
    negative: Vec<String>,
}

/// The examples, with the `%%` that keeps secret scanners off the file removed.
fn load() -> File {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/examples.toml");
    let text = std::fs::read_to_string(path).unwrap().replace("%%", "");
    toml::from_str(&text).unwrap()
}

#[test]
fn every_rule_has_examples_and_finds_them() {
    let rules = Rules::builtin().unwrap();
    let scanner = Scanner::new(&rules, &PiiConfig::none()).unwrap();
    let file = load();
    let mut failures = Vec::new();
    for id in rules.ids() {
        if !file.example.iter().any(|e| e.rule == id) {
            failures.push(format!("{id}: no examples"));
        }
    }
    for ex in &file.example {
        for p in &ex.positive {
            let found = scanner.scan(p.as_bytes());
            if !found.iter().any(|f| *f.rule == *ex.rule) {
                failures.push(format!(
                    "{}: missed {p:?} (found {:?})",
                    ex.rule,
                    found.iter().map(|f| f.rule.to_string()).collect::<Vec<_>>()
                ));
            }
        }
        for n in &ex.negative {
            let found = scanner.scan(n.as_bytes());
            if !found.is_empty() {
                failures.push(format!(
                    "{}: false positive on {n:?}: {:?}",
                    ex.rule,
                    found.iter().map(|f| f.rule.to_string()).collect::<Vec<_>>()
                ));
            }
        }
    }
    for n in &file.negatives {
        let found = scanner.scan(n.as_bytes());
        if !found.is_empty() {
            failures.push(format!(
                "hard negative {n:?}: {:?}",
                found.iter().map(|f| f.rule.to_string()).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
