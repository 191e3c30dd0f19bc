//! Unit tests for applying single edits.

use pretty_assertions::assert_eq;

use crate::apply::apply;
use crate::edit::{Edit, Format, Op, Replace};

fn replace(search: &[&str], with: &[&str]) -> Edit {
    Edit {
        path: Some("f.txt".to_owned()),
        op: Op::Replace(Replace {
            search: search.iter().map(|s| (*s).to_owned()).collect(),
            replace: with.iter().map(|s| (*s).to_owned()).collect(),
            ..Replace::default()
        }),
        format: Format::SearchReplace,
        line: 1,
    }
}

#[test]
fn keeps_crlf() {
    let got = apply("a\r\nb\r\nc\r\n", &replace(&["b"], &["B", "B2"])).unwrap();
    assert_eq!(got.text, "a\r\nB\r\nB2\r\nc\r\n");
}

#[test]
fn keeps_missing_final_newline() {
    let got = apply("a\nb", &replace(&["b"], &["B"])).unwrap();
    assert_eq!(got.text, "a\nB");
    let got = apply("a\nb", &replace(&["a"], &["A"])).unwrap();
    assert_eq!(got.text, "A\nb");
    let got = apply("a\nb", &replace(&["b"], &[])).unwrap();
    assert_eq!(got.text, "a");
}

#[test]
fn empty_search_appends() {
    let got = apply("a\nb", &replace(&[], &["c"])).unwrap();
    assert_eq!(got.text, "a\nb\nc");
    let got = apply("", &replace(&[], &["c"])).unwrap();
    assert_eq!(got.text, "c\n");
}

#[test]
fn move_and_delete() {
    let mut edit = replace(&[], &[]);
    edit.op = Op::Move {
        to: "g.txt".to_owned(),
    };
    assert_eq!(apply("x\n", &edit).unwrap().text, "x\n");
    edit.op = Op::Delete;
    let got = apply("x\n", &edit).unwrap();
    assert_eq!((got.text.as_str(), got.hunks.len()), ("", 1));
}
