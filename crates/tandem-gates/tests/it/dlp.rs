//! The DLP gate: secrets in added lines fail it, named by rule, file and line; removed and context
//! lines are not the change's doing.

use pretty_assertions::assert_eq;
use tandem_gates::{AddedLine, added_lines, changed_files, dlp_gate};

use crate::support::scanner;

/// A GitHub token, split so the repository's own secret scanning does not flag this file.
const TOKEN: &str = concat!("ghp_", "R8fK2pLq9ZxT4mWv7NcB1yHs6DjQ3gUe5AoI");

fn diff(removed: &str, added: &str) -> String {
    format!(
        "diff --git a/src/config.rs b/src/config.rs\n\
         index 1111111..2222222 100644\n\
         --- a/src/config.rs\n\
         +++ b/src/config.rs\n\
         @@ -10,4 +10,5 @@ fn config() {{\n\
         \x20   let a = 1;\n\
         -{removed}\n\
         +{added}\n\
         +    let b = 2;\n\
         \x20   let c = 3;\n\
         \x20   let d = 4;\n"
    )
}

#[test]
fn secret_in_an_added_line_fails_the_gate() {
    let diff = diff(
        "    let token = env();",
        &format!("    let token = \"{TOKEN}\";"),
    );
    let result = dlp_gate(&scanner(), &diff);
    assert!(!result.passed);
    assert_eq!(result.name, "dlp");
    assert_eq!(result.findings, ["github-pat in src/config.rs:11"]);
    assert!(!format!("{result:?}").contains(TOKEN));
}

#[test]
fn secret_in_a_removed_line_passes() {
    let diff = diff(
        &format!("    let token = \"{TOKEN}\";"),
        "    let token = env();",
    );
    let result = dlp_gate(&scanner(), &diff);
    assert!(result.passed, "{result:?}");
    assert!(result.findings.is_empty());
}

#[test]
fn secret_in_a_context_line_passes() {
    let diff = format!(
        "--- a/.env\n+++ b/.env\n@@ -1,2 +1,3 @@\n GITHUB_TOKEN={TOKEN}\n+DEBUG=1\n OTHER=2\n"
    );
    assert!(dlp_gate(&scanner(), &diff).passed);
}

#[test]
fn added_lines_follow_hunks_and_files() {
    let diff = "diff --git a/a.txt b/a.txt\n\
                --- a/a.txt\n\
                +++ b/a.txt\n\
                @@ -1,2 +1,2 @@\n\
                -old\n\
                +++ looks like a header\n\
                \x20same\n\
                @@ -20 +20,2 @@\n\
                \x20twenty\n\
                +twenty-one\n\
                \\ No newline at end of file\n\
                diff --git a/gone.txt b/gone.txt\n\
                deleted file mode 100644\n\
                --- a/gone.txt\n\
                +++ /dev/null\n\
                @@ -1 +0,0 @@\n\
                -bye\n\
                --- /dev/null\n\
                +++ b/new.txt\t2024-01-01 00:00:00\n\
                @@ -0,0 +1 @@\n\
                +hello\n";
    let line = |file: &str, line, text: &str| AddedLine {
        file: file.to_owned(),
        line,
        text: text.to_owned(),
    };
    assert_eq!(
        added_lines(diff),
        [
            line("a.txt", 1, "++ looks like a header"),
            line("a.txt", 21, "twenty-one"),
            line("new.txt", 1, "hello"),
        ]
    );
    assert_eq!(changed_files(diff), ["a.txt", "gone.txt", "new.txt"]);
}
