//! Unit tests for the parser's line classifiers.

use pretty_assertions::assert_eq;

use crate::parser::{diff_path, fence_marker, parse_hunk_header, path_like};

#[test]
fn hunk_headers() {
    assert_eq!(
        parse_hunk_header("@@ -12,4 +12,5 @@ fn x()"),
        (Some(12), Some((4, 5)))
    );
    assert_eq!(parse_hunk_header("@@ -3 +3 @@"), (Some(3), Some((1, 1))));
    assert_eq!(parse_hunk_header("@@ ... @@"), (None, None));
    assert_eq!(parse_hunk_header("@@"), (None, None));
}

#[test]
fn paths() {
    assert_eq!(path_like("**src/lib.rs**").as_deref(), Some("src/lib.rs"));
    assert_eq!(path_like("`a.py`:").as_deref(), Some("a.py"));
    assert_eq!(
        path_like("### path=web/app.ts").as_deref(),
        Some("web/app.ts")
    );
    assert_eq!(path_like("Done."), None);
    assert_eq!(path_like("rust"), None);
    assert_eq!(path_like("see the file a.rs"), None);
    assert_eq!(diff_path("b/x/y.rs\t2024-01-01").as_deref(), Some("x/y.rs"));
    assert_eq!(diff_path("/dev/null"), None);
}

#[test]
fn fences() {
    assert_eq!(fence_marker("```rust"), Some("```"));
    assert_eq!(fence_marker("  ````"), Some("````"));
    assert_eq!(fence_marker("~~~"), Some("~~~"));
    assert_eq!(fence_marker("``x"), None);
}
