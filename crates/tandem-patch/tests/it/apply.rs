//! Applying parsed edits to realistic files.

use pretty_assertions::assert_eq;
use tandem_patch::{Error, ParserConfig, apply, apply_all, unified_diff};

use crate::{apply_to, edits, no_default};

/// About 60 lines of ordinary Rust used by several tests.
const SOURCE: &str = "//! A small config loader.\n\nuse std::collections::BTreeMap;\n\n/// Settings read from a file.\n#[derive(Debug, Default)]\npub struct Settings {\n    pub name: String,\n    pub retries: u32,\n    pub tags: BTreeMap<String, String>,\n}\n\nimpl Settings {\n    /// Parses `key = value` lines.\n    pub fn parse(text: &str) -> Self {\n        let mut out = Settings::default();\n        for line in text.lines() {\n            let Some((key, value)) = line.split_once('=') else {\n                continue;\n            };\n            match key.trim() {\n                \"name\" => out.name = value.trim().to_owned(),\n                \"retries\" => out.retries = value.trim().parse().unwrap_or(3),\n                other => {\n                    out.tags.insert(other.to_owned(), value.trim().to_owned());\n                }\n            }\n        }\n        out\n    }\n\n    /// The retry count, at least one.\n    pub fn retries(&self) -> u32 {\n        self.retries.max(1)\n    }\n}\n";

#[test]
fn search_replace_on_crlf_file() {
    let original = SOURCE.replace('\n', "\r\n");
    let text = "src/settings.rs\n<<<<<<< SEARCH\n    pub fn retries(&self) -> u32 {\n        self.retries.max(1)\n=======\n    pub fn retries(&self) -> u32 {\n        self.retries.clamp(1, 10)\n>>>>>>> REPLACE\n";
    let got = apply_to(&original, "src/settings.rs", &edits(text, no_default()));
    assert_eq!(
        got,
        original.replace("self.retries.max(1)", "self.retries.clamp(1, 10)")
    );
    assert!(!got.replace("\r\n", "").contains('\n'));
}

#[test]
fn no_trailing_newline_is_kept() {
    let original = "a = 1\nb = 2";
    let text = "<<<<<<< SEARCH\nb = 2\n=======\nb = 3\nc = 4\n>>>>>>> REPLACE\n";
    let config = ParserConfig {
        default_path: Some("x.toml".to_owned()),
        bare_fence_is_rewrite: false,
    };
    assert_eq!(
        apply_to(original, "x.toml", &edits(text, config)),
        "a = 1\nb = 3\nc = 4"
    );
}

#[test]
fn unicode_lines() {
    let original = "grüße = \"hallo\"\n名前 = \"太郎\"\nemoji = \"🦀\"\n";
    let text =
        "i18n.toml\n<<<<<<< SEARCH\n名前 = \"太郎\"\n=======\n名前 = \"花子\"\n>>>>>>> REPLACE\n";
    assert_eq!(
        apply_to(original, "i18n.toml", &edits(text, no_default())),
        "grüße = \"hallo\"\n名前 = \"花子\"\nemoji = \"🦀\"\n"
    );
}

#[test]
fn search_block_found_twice_is_refused() {
    let original = "fn a() {\n    log();\n    run();\n}\n\nfn b() {\n    log();\n    run();\n}\n";
    let text = "src/jobs.rs\n<<<<<<< SEARCH\n    log();\n    run();\n=======\n    run();\n>>>>>>> REPLACE\n";
    let edit = &edits(text, no_default())[0];
    let err = apply(original, edit).unwrap_err();
    assert_eq!(
        err,
        Error::Ambiguous {
            path: "src/jobs.rs".into(),
            first_line: "log();".into(),
            count: 2,
        }
    );
    assert_eq!(
        err.to_string(),
        "src/jobs.rs: search text matches 2 places (first line `log();`); add surrounding lines to make it unique"
    );
}

#[test]
fn not_found_names_file_and_first_line() {
    let text = "a.rs\n<<<<<<< SEARCH\n\nfn missing() {}\n=======\n>>>>>>> REPLACE\n";
    let err = apply(SOURCE, &edits(text, no_default())[0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.rs: search text not found (first line `fn missing() {}`)"
    );
}

#[test]
fn hunk_with_line_numbers_off_by_ten() {
    // The real location is line 32; the model says 42.
    let text = "--- a/src/settings.rs\n+++ b/src/settings.rs\n@@ -42,4 +42,4 @@ impl Settings {\n     /// The retry count, at least one.\n     pub fn retries(&self) -> u32 {\n-        self.retries.max(1)\n+        self.retries.max(2)\n     }\n";
    let got = apply_to(SOURCE, "src/settings.rs", &edits(text, no_default()));
    assert_eq!(got, SOURCE.replace("max(1)", "max(2)"));
}

#[test]
fn whitespace_tolerant_match_reindents_replacement() {
    // The model dropped the method's indentation and added trailing spaces.
    let text = "s.rs\n<<<<<<< SEARCH\npub fn retries(&self) -> u32 {   \n    self.retries.max(1)\n}\n=======\npub fn retries(&self) -> u32 {\n    // Never zero.\n    self.retries.max(1)\n}\n>>>>>>> REPLACE\n";
    let got = apply_to(SOURCE, "s.rs", &edits(text, no_default()));
    assert_eq!(
        got,
        SOURCE.replace(
            "        self.retries.max(1)\n",
            "        // Never zero.\n        self.retries.max(1)\n"
        )
    );
}

#[test]
fn apply_patch_with_add_delete_and_move() {
    let patch = "*** Begin Patch\n*** Add File: src/limits.rs\n+//! Limits.\n+pub const MAX_RETRIES: u32 = 10;\n*** Delete File: src/legacy.rs\n*** Update File: src/settings.rs\n*** Move to: src/config/settings.rs\n@@ impl Settings {\n@@     pub fn retries(&self) -> u32 {\n-        self.retries.max(1)\n+        self.retries.clamp(1, crate::limits::MAX_RETRIES)\n     }\n }\n*** End of File\n*** End Patch\n";
    let got = edits(patch, no_default());
    assert_eq!(
        apply_to("", "src/limits.rs", &got),
        "//! Limits.\npub const MAX_RETRIES: u32 = 10;\n"
    );
    assert_eq!(apply_to("old\n", "src/legacy.rs", &got), "");
    // The move comes first, under the old path; the content edit follows under the new one.
    let moved: Vec<_> = got
        .iter()
        .filter(|e| e.path.as_deref() == Some("src/settings.rs"))
        .collect();
    assert_eq!(apply_all(SOURCE, moved).unwrap().text, SOURCE);
    assert_eq!(
        apply_to(SOURCE, "src/config/settings.rs", &got),
        SOURCE.replace(
            "self.retries.max(1)",
            "self.retries.clamp(1, crate::limits::MAX_RETRIES)"
        )
    );
}

#[test]
fn add_file_over_existing_content_is_refused() {
    let got = edits(
        "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch\n",
        no_default(),
    );
    assert_eq!(
        apply("y\n", &got[0]).unwrap_err().to_string(),
        "a.txt: file to be added already exists"
    );
}

#[test]
fn rewrite_keeps_the_original_line_endings() {
    let text = "a.txt\n```\none\ntwo\n```\n";
    let got = apply_to("zero\r\n", "a.txt", &edits(text, no_default()));
    assert_eq!(got, "one\r\ntwo\r\n");
}

#[test]
fn unified_rendering() {
    let new = SOURCE.replace("max(1)", "max(2)");
    insta::assert_snapshot!(unified_diff("src/settings.rs", SOURCE, &new), @r"
    --- a/src/settings.rs
    +++ b/src/settings.rs
    @@ -31,6 +31,6 @@
     
         /// The retry count, at least one.
         pub fn retries(&self) -> u32 {
    -        self.retries.max(1)
    +        self.retries.max(2)
         }
     }
    ");
    insta::assert_snapshot!(unified_diff("n.txt", "a\nb", "a\nc"), @r"
    --- a/n.txt
    +++ b/n.txt
    @@ -1,2 +1,2 @@
     a
    -b
    \ No newline at end of file
    +c
    \ No newline at end of file
    ");
    assert_eq!(unified_diff("same", "x\n", "x\n"), "");
}
