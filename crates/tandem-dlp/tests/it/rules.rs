//! Reading gitleaks-format rule files: accepted shapes and clear refusals.

use tandem_dlp::{Error, PiiConfig, Rules, Scanner};

use crate::TEST_RULES;

#[test]
fn builtin_rules_parse_and_compile() {
    let rules = Rules::builtin().unwrap();
    assert!(rules.len() >= 60, "only {} default rules", rules.len());
    Scanner::new(&rules, &PiiConfig::all()).unwrap();
}

#[test]
fn test_rules_parse() {
    let rules = Rules::from_toml(TEST_RULES).unwrap();
    assert_eq!(
        rules.ids().collect::<Vec<_>>(),
        ["github-pat", "generic-password", "private-key"]
    );
}

#[test]
fn extend_use_default_merges_overrides_and_disables() {
    let builtin = Rules::builtin().unwrap();
    let first = builtin.ids().next().unwrap().to_owned();
    let text = format!(
        r#"
[extend]
useDefault = true
disabledRules = ["{first}"]

[[rules]]
id = "acme-internal"
regex = '''acme_[a-z0-9]{{20}}'''
keywords = ["acme_"]
"#
    );
    let rules = Rules::from_toml(&text).unwrap();
    assert_eq!(rules.len(), builtin.len());
    assert!(rules.ids().any(|id| id == "acme-internal"));
    assert!(!rules.ids().any(|id| id == first));
}

#[test]
fn old_single_allowlist_forms_are_accepted() {
    let text = r#"
[allowlist]
paths = ['''vendor/''']

[[rules]]
id = "x"
regex = '''xkey_[a-z]{10}'''
keywords = ["xkey_"]
[rules.allowlist]
regexes = ['''xkey_aaaaaaaaaa''']
regexTarget = "match"
condition = "AND"
"#;
    let rules = Rules::from_toml(text).unwrap();
    let scanner = Scanner::new(&rules, &PiiConfig::none()).unwrap();
    assert_eq!(scanner.scan(b"xkey_aaaaaaaaaa").len(), 0);
    assert_eq!(scanner.scan(b"xkey_abcdefghij").len(), 1);
    assert_eq!(
        scanner.scan_path("vendor/a.rs", b"xkey_abcdefghij").len(),
        0
    );
}

fn refused(text: &str) -> String {
    match Rules::from_toml(text) {
        Ok(rules) => match Scanner::new(&rules, &PiiConfig::none()) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    assert!(
        refused("[[rules]]\nid = \"a\"\nregex = \"(\"\nkeywords=[\"a\"]")
            .contains("rule `a`: invalid regex")
    );
    assert!(
        refused("[[rules]]\nid = \"a\"\nregex = \"a\"\nbogus = 1")
            .contains("unknown field `bogus`")
    );
    assert!(refused("[[rules]]\nid = \"a\"\n").contains("needs a `regex`"));
    assert!(
        refused("[[rules]]\nid = \"a\"\nregex = \"a(b)\"\nsecretGroup = 3")
            .contains("secretGroup = 3")
    );
    assert!(
        refused("[[rules]]\nid = \"a\"\nregex = \"a\"\n[[rules.required]]\nid = \"b\"")
            .contains("composite")
    );
    assert!(
        refused("[[rules]]\nid = \"a\"\nregex = \"a\"\n[[rules]]\nid = \"a\"\nregex = \"b\"")
            .contains("duplicate")
    );
    assert!(refused("[[rules]]\nid = \"a\"\nregex = \"a\"\n[[rules.allowlists]]\ncondition = \"XOR\"\nstopwords=[\"x\"]").contains("XOR"));
    assert!(refused("[extend]\npath = \"other.toml\"").contains("not supported"));
    assert!(matches!(
        Rules::from_toml("not toml ["),
        Err(Error::Toml(_))
    ));
}

#[test]
fn path_only_rules_report_files() {
    let text = r#"
[[rules]]
id = "pkcs12-file"
path = '''\.p12$'''
"#;
    let scanner = Scanner::new(&Rules::from_toml(text).unwrap(), &PiiConfig::none()).unwrap();
    assert_eq!(scanner.scan_path("certs/a.p12", b"binary").len(), 1);
    assert_eq!(scanner.scan_path("certs/a.pem", b"binary").len(), 0);
    assert_eq!(scanner.scan(b"binary").len(), 0);
}
