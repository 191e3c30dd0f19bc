//! Tests of the DLP benchmark's corpus, scoring and peer-output parsers.

use super::corpus::{self, LineIndex, PlantKind, Rng};
use super::peers::{self, LineFinding};
use super::{NEGATIVE_TYPES, SECRET_TYPES, score};

fn source() -> String {
    (0..4000)
        .map(|i| format!("    let value_{i} = compute({i}); // ordinary code\n"))
        .collect()
}

#[test]
fn crc32_and_base62_match_zlib_and_githubs_scheme() {
    assert_eq!(corpus::crc32(b"123456789"), 0xCBF4_3926);
    // Python: zlib.crc32(b"abcdefghijklmnopqrstuvwxyz0123") in base62 (0-9A-Za-z), six digits.
    assert_eq!(
        corpus::base62_6(corpus::crc32(b"abcdefghijklmnopqrstuvwxyz0123")),
        "2LolCm"
    );
    let token = corpus::checksummed_token(&mut Rng::new(7), "ghp_");
    assert_eq!(token.len(), 40);
    let (body, check) = token["ghp_".len()..].split_at(30);
    assert_eq!(corpus::base62_6(corpus::crc32(body.as_bytes())), check);
}

#[test]
fn base64_standard_and_url() {
    assert_eq!(corpus::base64(b"hello", false), "aGVsbG8=");
    assert_eq!(corpus::base64(b"hello", true), "aGVsbG8");
    assert_eq!(
        corpus::base64(br#"{"alg":"HS256","typ":"JWT"}"#, true),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    );
    assert_eq!(corpus::base64(&[0xfb, 0xff], false), "+/8=");
    assert_eq!(corpus::base64(&[0xfb, 0xff], true), "-_8");
}

#[test]
fn corpus_is_deterministic_sized_and_matches_its_manifest() {
    let source = source();
    let a = corpus::build(&source, 100_000, 1);
    let b = corpus::build(&source, 100_000, 1);
    let c = corpus::build(&source, 100_000, 2);
    assert_eq!(a.planted, b.planted);
    assert_ne!(a.planted, c.planted);
    assert!(a.planted.len() <= 100_000 && a.planted.len() > 99_000);
    assert!(a.clean.len() <= 100_000 && a.clean.len() > 99_000);
    assert!(!a.clean.contains("ghp_"));

    let secrets = a.plants.iter().filter(|p| p.kind == PlantKind::Secret);
    let negatives = a.plants.iter().filter(|p| p.kind == PlantKind::Negative);
    assert_eq!(secrets.count(), SECRET_TYPES.len() * 2);
    assert_eq!(negatives.count(), NEGATIVE_TYPES.len() * 2);
    let lines: Vec<&str> = a.planted.lines().collect();
    for plant in &a.plants {
        let covered = lines[plant.first_line - 1..plant.last_line].join("\n");
        assert_eq!(covered.trim_start(), plant.text, "{}", plant.label);
        assert!(
            SECRET_TYPES.contains(&plant.label) || NEGATIVE_TYPES.contains(&plant.label),
            "{}",
            plant.label
        );
    }
    // Every base line is still there, in order.
    let planted_lines: std::collections::BTreeSet<usize> = a
        .plants
        .iter()
        .flat_map(|p| p.first_line..=p.last_line)
        .collect();
    let rest: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !planted_lines.contains(&(i + 1)))
        .map(|(_, l)| *l)
        .collect();
    assert!(source.lines().zip(&rest).all(|(s, r)| s == *r));
}

#[test]
fn tiny_corpus_keeps_every_plant() {
    let small = corpus::build("fn a() {}\nfn b() {}\n", 10, 3);
    assert_eq!(
        small.plants.len(),
        SECRET_TYPES.len() * 2 + NEGATIVE_TYPES.len() * 2
    );
}

#[test]
fn line_index_counts_newlines_before() {
    let index = LineIndex::new(b"ab\ncd\n\nef");
    assert_eq!(index.line(0), 1);
    assert_eq!(index.line(2), 1);
    assert_eq!(index.line(3), 2);
    assert_eq!(index.line(6), 3);
    assert_eq!(index.line(7), 4);
}

#[test]
fn scoring_splits_recall_negatives_and_other_lines() {
    let corpus = corpus::build(&source(), 50_000, 5);
    let secret = corpus
        .plants
        .iter()
        .find(|p| p.label == "pem-private-key")
        .map(|p| (p.first_line, p.last_line));
    let negative = corpus
        .plants
        .iter()
        .find(|p| p.kind == PlantKind::Negative)
        .map(|p| p.first_line);
    let (Some((first, last)), Some(negative)) = (secret, negative) else {
        panic!("plants missing");
    };
    assert!(last > first);
    let ordinary = (1..)
        .find(|l| {
            !corpus
                .plants
                .iter()
                .any(|p| (p.first_line..=p.last_line).contains(l))
        })
        .unwrap_or(1);
    let findings = vec![
        LineFinding {
            line: last,
            rule: "pem".to_owned(),
        },
        LineFinding {
            line: negative,
            rule: "x".to_owned(),
        },
        LineFinding {
            line: ordinary,
            rule: "y".to_owned(),
        },
        LineFinding {
            line: ordinary,
            rule: "z".to_owned(),
        },
    ];
    let s = score(&corpus.plants, &findings, &corpus.planted);
    assert_eq!(s.findings, 4);
    assert_eq!(s.planted_found, 1);
    assert_eq!(s.planted_total, SECRET_TYPES.len() * 2);
    assert_eq!(s.negatives_flagged, 1);
    assert_eq!(s.other_fp_lines, 1);
    assert_eq!(s.other_fp_findings, 2);
    assert_eq!(s.fp_examples[0].rules, "y, z");
    assert_eq!(s.missed.len(), SECRET_TYPES.len() * 2 - 1);
    assert_eq!(s.secret_types["pem-private-key"], (1, 2));
}

#[test]
fn tandem_cli_json() {
    let out = r#"[{"file": "corpus.rs", "line": 3, "column": 5, "rule": "github-pat", "preview": "ghp_********"}]"#;
    let findings = peers::parse_tandem(out).unwrap_or_default();
    assert_eq!(
        findings,
        [LineFinding {
            line: 3,
            rule: "github-pat".to_owned()
        }]
    );
    assert!(peers::parse_tandem("{}").is_err());
}

#[test]
fn ripsecrets_lines() {
    let out = "corpus.rs:12:ghp_abc\ncorpus.rs:40:AKIA\nother.rs:1:x\n";
    let findings = peers::parse_ripsecrets(out, "corpus.rs");
    let lines: Vec<usize> = findings.iter().map(|f| f.line).collect();
    assert_eq!(lines, [12, 40]);
}

#[test]
fn detect_secrets_baseline() {
    let out = r#"{"version": "1.5.0", "results": {"corpus.rs": [
        {"type": "GitHub Token", "filename": "corpus.rs", "line_number": 2},
        {"type": "Secret Keyword", "filename": "corpus.rs", "line_number": 7}]}}"#;
    let findings = peers::parse_detect_secrets(out).unwrap_or_default();
    assert_eq!(
        findings,
        [
            LineFinding {
                line: 2,
                rule: "GitHub Token".to_owned()
            },
            LineFinding {
                line: 7,
                rule: "Secret Keyword".to_owned()
            }
        ]
    );
    assert!(peers::parse_detect_secrets("{}").is_err());
}

#[test]
fn betterleaks_report_with_components() {
    let out = r#"{"schema_version": "1", "findings": [
        {"rule_id": "aws-access-token", "location": {"start_line": 4},
         "component_sets": [{"components": [{"rule_id": "aws-secret-access-key", "location": {"start_line": 3}}]}]},
        {"rule_id": "github-pat", "location": {"start_line": 8}}]}"#;
    let findings = peers::parse_betterleaks(out).unwrap_or_default();
    let got: Vec<(usize, &str)> = findings.iter().map(|f| (f.line, f.rule.as_str())).collect();
    assert_eq!(
        got,
        [
            (4, "aws-access-token"),
            (3, "aws-secret-access-key"),
            (8, "github-pat")
        ]
    );
    let empty = peers::parse_betterleaks(r#"{"findings": null}"#).unwrap_or_default();
    assert!(empty.is_empty());
}
