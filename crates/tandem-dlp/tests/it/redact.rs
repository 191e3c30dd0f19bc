//! Whole-text redaction: actions, stable placeholders, idempotence and the vault.

use tandem_dlp::{Action, Actions, Error, PiiConfig, Redactor};

use crate::{ghp, test_redactor, test_scanner};

#[test]
fn redact_replaces_only_the_secret_with_a_stable_placeholder() {
    let r = test_redactor();
    let text = format!("a {} b password = \"Zq8!rT2@pL5#\" c", ghp(7));
    let out = r.redact(&text).unwrap();
    assert!(!out.text.contains(&ghp(7)));
    assert!(!out.text.contains("Zq8!rT2@pL5#"));
    assert!(out.text.starts_with("a [REDACTED:github-pat:"));
    assert!(
        out.text
            .contains("password = \"[REDACTED:generic-password:")
    );
    assert_eq!(out.reports.len(), 2);
    assert_eq!(out.vault.len(), 2);
    // Same value, same placeholder; different key, different placeholder.
    assert_eq!(r.redact(&text).unwrap().text, out.text);
    let other = Redactor::new(
        test_scanner(PiiConfig::all()),
        Actions::redact_all(),
        [1; 32],
    );
    assert_ne!(other.redact(&text).unwrap().text, out.text);
    // Idempotent.
    assert_eq!(r.redact(&out.text).unwrap().text, out.text);
    // Restorable on the local side.
    assert_eq!(out.vault.restore(&out.text), text);
}

#[test]
fn block_names_the_rule_never_the_value() {
    let r = Redactor::new(
        test_scanner(PiiConfig::none()),
        Actions::new(Action::Redact, Action::Redact).with_rule("github-pat", Action::Block),
        [0; 32],
    );
    let token = ghp(8);
    let err = r.redact(&format!("x {token}")).unwrap_err();
    assert!(matches!(&err, Error::Blocked { rule } if &**rule == "github-pat"));
    assert!(!err.to_string().contains(&token));
}

#[test]
fn log_reports_and_passes_through() {
    let r = Redactor::new(
        test_scanner(PiiConfig::all()),
        Actions::new(Action::Log, Action::Log),
        [0; 32],
    );
    let text = format!("x {} jane@acmecorp.io", ghp(9));
    let out = r.redact(&text).unwrap();
    assert_eq!(out.text, text);
    assert_eq!(out.reports.len(), 2);
    assert!(out.reports.iter().all(|r| r.action == Action::Log));
    assert!(out.vault.is_empty());
}

#[test]
fn per_class_actions() {
    let r = Redactor::new(
        test_scanner(PiiConfig::all()),
        Actions::new(Action::Redact, Action::Log),
        [0; 32],
    );
    let out = r.redact(&format!("{} jane@acmecorp.io", ghp(10))).unwrap();
    assert!(out.text.starts_with("[REDACTED:github-pat:"));
    assert!(out.text.ends_with(" jane@acmecorp.io"));
}

#[test]
fn unknown_placeholders_survive_restore() {
    let out = test_redactor().redact("nothing here").unwrap();
    assert_eq!(
        out.vault.restore("[REDACTED:x:00000000] ["),
        "[REDACTED:x:00000000] ["
    );
}

#[test]
fn multibyte_text_around_secrets_stays_valid() {
    let text = format!("é{}ü 密码 password=\"Zq8!rT2@pL5#\"é", ghp(11));
    let out = test_redactor().redact(&text).unwrap();
    assert!(out.text.starts_with("é[REDACTED:"));
    assert!(out.text.ends_with("\"é"));
}
