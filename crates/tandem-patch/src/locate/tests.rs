//! Unit tests for locating search texts.

use pretty_assertions::assert_eq;

use crate::edit::Replace;
use crate::locate::{Level, locate, reindent};

fn replace(search: &[&str]) -> Replace {
    Replace {
        search: search.iter().map(|s| (*s).to_owned()).collect(),
        ..Replace::default()
    }
}

#[test]
fn exact_beats_tolerant() {
    let lines = ["a", "  b", "b", "c"];
    let found = locate("f", &lines, &replace(&["b"])).unwrap();
    assert_eq!((found.start, found.level), (2, Level::Exact));
}

#[test]
fn trailing_whitespace_then_indentation() {
    let lines = ["fn x() {", "    let a = 1;   ", "}"];
    let found = locate("f", &lines, &replace(&["    let a = 1;"])).unwrap();
    assert_eq!(found.level, Level::TrailingWhitespace);
    let found = locate("f", &lines, &replace(&["let a = 1;"])).unwrap();
    assert_eq!(found.level, Level::Indentation);
}

#[test]
fn hint_picks_among_equal_matches() {
    let lines = ["x", "y", "x", "y"];
    let mut edit = replace(&["x", "y"]);
    assert!(locate("f", &lines, &edit).is_err());
    edit.hint_line = Some(3);
    assert_eq!(locate("f", &lines, &edit).unwrap().start, 2);
    edit.hint_line = Some(2);
    assert!(locate("f", &lines, &edit).is_err());
}

#[test]
fn anchors_narrow_the_search() {
    let lines = ["fn a() {", "    x", "}", "fn b() {", "    x", "}"];
    let mut edit = replace(&["    x"]);
    edit.anchors = vec!["fn b() {".to_owned()];
    assert_eq!(locate("f", &lines, &edit).unwrap().start, 4);
}

#[test]
fn reindent_adds_removes_and_swaps() {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        reindent(&s(&["a"]), &["    a"], &s(&["b", "  c", ""])),
        s(&["    b", "      c", ""])
    );
    assert_eq!(
        reindent(&s(&["        a"]), &["    a"], &s(&["        b", "    c"])),
        s(&["    b", "c"])
    );
    assert_eq!(
        reindent(&s(&["    a"]), &["\ta"], &s(&["    b", "        c"])),
        s(&["\tb", "\t    c"])
    );
}
