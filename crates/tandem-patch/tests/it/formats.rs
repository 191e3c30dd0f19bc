//! Each edit format, parsed whole.

use pretty_assertions::assert_eq;
use tandem_patch::{Event, Format, Op, ParserConfig, Replace, parse};

use crate::{edits, no_default};

fn replace(search: &[&str], with: &[&str]) -> Op {
    Op::Replace(Replace {
        search: search.iter().map(|s| (*s).to_owned()).collect(),
        replace: with.iter().map(|s| (*s).to_owned()).collect(),
        ..Replace::default()
    })
}

#[test]
fn search_replace_in_fence_with_path() {
    let text = "I'll rename it.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\nfn old() {}\n=======\nfn new() {}\n>>>>>>> REPLACE\n```\n\nDone.\n";
    let got = edits(text, no_default());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path.as_deref(), Some("src/lib.rs"));
    assert_eq!(got[0].format, Format::SearchReplace);
    assert_eq!(got[0].line, 5);
    assert_eq!(got[0].op, replace(&["fn old() {}"], &["fn new() {}"]));
}

#[test]
fn search_replace_path_optional_with_one_file_in_context() {
    let config = ParserConfig {
        default_path: Some("main.py".to_owned()),
        bare_fence_is_rewrite: false,
    };
    let text = "<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n";
    let got = edits(text, config);
    assert_eq!(got[0].path.as_deref(), Some("main.py"));
}

#[test]
fn search_replace_blocks_reuse_the_previous_path() {
    let text = "**app/models.py**\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\n>>>>>>> REPLACE\n";
    let got = edits(text, no_default());
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].path.as_deref(), Some("app/models.py"));
    assert_eq!(got[1].op, replace(&["c"], &[]));
}

#[test]
fn unified_diff_hunks_are_separate_edits() {
    let text = "```diff\n--- a/src/x.rs\n+++ b/src/x.rs\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -20,2 +20,3 @@ fn tail()\n y\n+z\n z2\n```\n";
    let got = edits(text, no_default());
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| e.path.as_deref() == Some("src/x.rs")));
    let Op::Replace(second) = &got[1].op else {
        panic!("not a replace: {:?}", got[1].op)
    };
    assert_eq!(second.hint_line, Some(20));
    assert_eq!(second.search, ["y", "z2"]);
    assert_eq!(second.replace, ["y", "z", "z2"]);
}

#[test]
fn unified_diff_without_numbers_and_with_bare_blank_context() {
    let text =
        "--- a/f.py\n+++ b/f.py\n@@\n def f():\n\n-    return 1\n+    return 2\n\nThat's it.\n";
    let got = edits(text, no_default());
    let Op::Replace(r) = &got[0].op else {
        panic!("not a replace")
    };
    assert_eq!(r.hint_line, None);
    assert_eq!(r.search, ["def f():", "", "    return 1"]);
    assert_eq!(r.replace, ["def f():", "", "    return 2"]);
}

#[test]
fn unified_diff_deletion_and_creation() {
    let text = "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n";
    let got = edits(text, no_default());
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].path.as_deref(), &got[0].op),
        (Some("old.txt"), &Op::Delete)
    );
    assert_eq!(got[1].path.as_deref(), Some("new.txt"));
    assert_eq!(crate::apply_to("", "new.txt", &got), "hello\nworld\n");
}

#[test]
fn apply_patch_add_delete_move_update() {
    let text = "*** Begin Patch\n*** Add File: docs/new.md\n+# New\n+\n+text\n*** Delete File: old/gone.rs\n*** Update File: src/a.rs\n*** Move to: src/b.rs\n@@ impl Foo\n@@     fn bar(&self) {\n-        1\n+        2\n     }\n*** End of File\n*** End Patch\n";
    let got = edits(text, no_default());
    let summary: Vec<(Option<&str>, &str)> = got
        .iter()
        .map(|e| {
            let kind = match &e.op {
                Op::Create { .. } => "create",
                Op::Delete => "delete",
                Op::Move { .. } => "move",
                Op::Replace(_) => "replace",
                Op::Rewrite { .. } => "rewrite",
            };
            (e.path.as_deref(), kind)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("docs/new.md"), "create"),
            (Some("old/gone.rs"), "delete"),
            (Some("src/a.rs"), "move"),
            (Some("src/b.rs"), "replace"),
        ]
    );
    assert_eq!(
        got[0].op,
        Op::Create {
            content: "# New\n\ntext\n".to_owned()
        }
    );
    assert_eq!(
        got[2].op,
        Op::Move {
            to: "src/b.rs".to_owned()
        }
    );
    let Op::Replace(r) = &got[3].op else {
        panic!("not a replace")
    };
    assert_eq!(r.anchors, ["impl Foo", "fn bar(&self) {"]);
    assert!(r.end_of_file);
}

#[test]
fn whole_file_rewrite_needs_a_name() {
    let text = "Here is an example:\n```rust\nfn main() {}\n```\n";
    assert_eq!(edits(text, no_default()), []);
    let text = "src/main.rs\n```rust\nfn main() {}\n```\n";
    let got = edits(text, no_default());
    assert_eq!(got[0].format, Format::WholeFile);
    assert_eq!(
        got[0].op,
        Op::Rewrite {
            content: "fn main() {}\n".to_owned()
        }
    );
    let config = ParserConfig {
        default_path: Some("main.rs".to_owned()),
        bare_fence_is_rewrite: true,
    };
    let got = edits("```\nfn main() {}\n```\n", config);
    assert_eq!(got[0].path.as_deref(), Some("main.rs"));
}

#[test]
fn malformed_blocks_are_reported() {
    let got = parse(
        "f.rs\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nb\n",
        no_default(),
    );
    insta::assert_debug_snapshot!(got, @r#"
    [
        Malformed {
            line: 4,
            message: "`>>>>>>> REPLACE` before `=======`",
        },
        Malformed {
            line: 5,
            message: "search/replace block not terminated",
        },
    ]
    "#);
    let got = parse(
        "*** Begin Patch\n*** Update File: a\nnonsense\n*** End Patch\n",
        no_default(),
    );
    assert!(matches!(got[0], Event::Malformed { line: 3, .. }));
}
