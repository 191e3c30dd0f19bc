//! Scanning: keyword windows, secret groups, entropy, allowlists and personal data.

use tandem_dlp::{Class, PiiConfig, PiiKind};

use crate::{ghp, test_scanner};

fn ids(text: &str, pii: PiiConfig) -> Vec<String> {
    test_scanner(pii)
        .scan(text.as_bytes())
        .into_iter()
        .map(|f| f.rule.to_string())
        .collect()
}

#[test]
fn token_found_with_exact_span() {
    let token = ghp(1);
    let text = format!("let t = \"{token}\";\n");
    let f = test_scanner(PiiConfig::none()).scan(text.as_bytes());
    assert_eq!(f.len(), 1);
    assert_eq!(&text[f[0].span.clone()], token);
    assert_eq!(f[0].class, Class::Secret);
}

#[test]
fn keywords_match_case_insensitively_and_far_apart_hits_are_all_found() {
    let filler = "x".repeat(5000);
    let text = format!(
        "{} {filler} PASSWORD = \"Zq8!rT2@pL5#\" {filler} {}",
        ghp(2),
        ghp(3)
    );
    assert_eq!(
        ids(&text, PiiConfig::none()),
        ["github-pat", "generic-password", "github-pat"]
    );
}

#[test]
fn entropy_and_stopwords_drop_weak_values() {
    assert!(ids("password = \"aaaaaaaaaaaa\"", PiiConfig::none()).is_empty());
    assert!(ids("password = \"changeme123\"", PiiConfig::none()).is_empty());
    assert_eq!(
        ids("password = \"Zq8!rT2@pL5#\"", PiiConfig::none()),
        ["generic-password"]
    );
}

#[test]
fn global_allowlist_applies() {
    assert!(ids("secret = \"EXAMPLEx9Kq2Lm\"", PiiConfig::none()).is_empty());
}

#[test]
fn too_long_tokens_do_not_match() {
    let text = format!("{}abc", ghp(4));
    assert!(ids(&text, PiiConfig::none()).is_empty());
}

#[test]
fn inline_allow_only_in_files() {
    let text = format!("t = \"{}\" # gitleaks:allow", ghp(5));
    let s = test_scanner(PiiConfig::none());
    assert_eq!(
        s.scan(text.as_bytes()).len(),
        1,
        "prompts cannot switch scanning off"
    );
    assert_eq!(s.scan_path("a.py", text.as_bytes()).len(), 0);
}

#[test]
fn pem_block_found_whole() {
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7".repeat(4);
    let text =
        format!("key:\n-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\nrest");
    let f = test_scanner(PiiConfig::none()).scan(text.as_bytes());
    assert_eq!(f.len(), 1);
    assert!(text[f[0].span.clone()].starts_with("-----BEGIN"));
    assert!(text[f[0].span.clone()].ends_with("KEY-----"));
}

#[test]
fn personal_data_is_validated() {
    let pii = PiiConfig::all();
    let found = |t: &str| {
        test_scanner(pii)
            .scan(t.as_bytes())
            .into_iter()
            .map(|f| (f.class, t[f.span].to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found("mail jane.doe@acmecorp.io now"),
        [(
            Class::Pii(PiiKind::Email),
            "jane.doe@acmecorp.io".to_owned()
        )]
    );
    assert!(found("see icon@2x.png").is_empty());
    assert_eq!(
        found("card 4111 1111 1111 1111 ok"),
        [(Class::Pii(PiiKind::Card), "4111 1111 1111 1111".to_owned())]
    );
    assert!(found("card 4111 1111 1111 1112 ok").is_empty(), "Luhn");
    assert_eq!(
        found("iban DE89 3704 0044 0532 0130 00."),
        [(
            Class::Pii(PiiKind::Iban),
            "DE89 3704 0044 0532 0130 00".to_owned()
        )]
    );
    assert!(
        !found("iban DE89 3704 0044 0532 0130 01.")
            .iter()
            .any(|(c, _)| *c == Class::Pii(PiiKind::Iban)),
        "mod-97"
    );
    assert_eq!(
        found("call +44 20 7946 0958 today"),
        [(Class::Pii(PiiKind::Phone), "+44 20 7946 0958".to_owned())]
    );
    assert_eq!(
        found("call (415) 555-2671"),
        [(Class::Pii(PiiKind::Phone), "(415) 555-2671".to_owned())]
    );
    assert!(found("let x = 1234567; let v = 3.14159;").is_empty());
    // Off unless configured.
    assert!(
        test_scanner(PiiConfig::none())
            .scan(b"jane.doe@acmecorp.io")
            .is_empty()
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let s = test_scanner(PiiConfig::all());
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    junk.extend_from_slice(b"\xff\xfeghp_\xc3password=\"\xe2\x82");
    let _ = s.scan(&junk);
    let _ = s.scan(b"");
}

#[test]
fn keywords_across_the_scanners_internal_part_boundaries_are_found() {
    // The keyword pass walks four parts of the text at once; secrets and keywords that cross a
    // part boundary must be found like any other.
    let s = test_scanner(PiiConfig::none());
    for len in [60usize, 97, 400, 1001, 4096, 20011] {
        for shift in 0..44 {
            let mut text = " ".repeat(len);
            let mut planted: Vec<String> = Vec::new();
            let mut free_from = 1;
            for k in 1..4u64 {
                let at = (len.div_ceil(4) * k as usize).saturating_sub(shift);
                let token = ghp(k + 10 * shift as u64);
                if at >= free_from && at + token.len() + 1 < len {
                    text.replace_range(at..at + token.len(), &token);
                    free_from = at + token.len() + 1;
                    planted.push(token);
                }
            }
            let found: Vec<String> = s
                .scan(text.as_bytes())
                .into_iter()
                .map(|f| text[f.span].to_owned())
                .collect();
            assert_eq!(found, planted, "len {len} shift {shift}");
        }
    }
}
