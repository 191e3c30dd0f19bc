//! Integration tests for tandem-dlp: rule files, scanning, redaction and streams.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[cfg(test)] modules"
)]

#[cfg(test)]
mod examples;
#[cfg(test)]
mod redact;
#[cfg(test)]
mod rules;
#[cfg(test)]
mod scan;
#[cfg(test)]
mod stream;

use std::sync::Arc;

use tandem_dlp::{Actions, PiiConfig, Redactor, Rules, Scanner};

/// A small rule set in gitleaks format used by the behaviour tests (independent of the defaults).
pub const TEST_RULES: &str = r#"
title = "test rules"

[[rules]]
id = "github-pat"
regex = '''\b(ghp_[0-9A-Za-z]{36})(?:[^0-9A-Za-z_]|$)'''
keywords = ["ghp_"]

[[rules]]
id = "generic-password"
regex = '''(?i)(?:password|passwd|secret)\s{0,3}[:=]\s{0,3}["']([^"'\s]{8,64})["']'''
secretGroup = 1
entropy = 3.0
keywords = ["password", "passwd", "secret"]
[[rules.allowlists]]
stopwords = ["changeme"]

[[rules]]
id = "private-key"
regex = '''-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[A-Za-z0-9+/=\s]{16,4096}-----END [A-Z ]{0,20}PRIVATE KEY-----'''
keywords = ["-----begin"]

[[allowlists]]
description = "documentation dummies"
regexes = ['''EXAMPLE''']
"#;

pub fn test_scanner(pii: PiiConfig) -> Arc<Scanner> {
    let rules = Rules::from_toml(TEST_RULES).unwrap();
    Arc::new(Scanner::new(&rules, &pii).unwrap())
}

pub fn test_redactor() -> Redactor {
    Redactor::new(
        test_scanner(PiiConfig::all()),
        Actions::redact_all(),
        [9; 32],
    )
}

pub fn default_redactor() -> Redactor {
    let rules = Rules::builtin().unwrap();
    Redactor::new(
        Arc::new(Scanner::new(&rules, &PiiConfig::all()).unwrap()),
        Actions::redact_all(),
        [3; 32],
    )
}

/// A fake GitHub token: the prefix and 36 characters from `seed`.
pub fn ghp(seed: u64) -> String {
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let body: String = (0..36)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            alphabet[((x >> 33) % 62) as usize] as char
        })
        .collect();
    format!("ghp_{body}")
}
