//! Per-hunk acceptance.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use tandem_patch::{apply_selected, hunks};

#[test]
fn accept_some_hunks() {
    let old = "a\nb\nc\nd\ne\nf\n";
    let new = "A\nb\nc\nd\nE\nf\ng\n";
    let hs = hunks(old, new);
    assert_eq!(hs.len(), 3);
    assert_eq!(
        (hs[0].old_start, hs[1].old_start, hs[2].old_start),
        (0, 4, 6)
    );
    assert_eq!(apply_selected(old, &hs, &[true, true, true]), new);
    assert_eq!(apply_selected(old, &hs, &[]), old);
    assert_eq!(
        apply_selected(old, &hs, &[false, true, false]),
        "a\nb\nc\nd\nE\nf\n"
    );
    assert_eq!(
        apply_selected(old, &hs, &[true, false, true]),
        "A\nb\nc\nd\ne\nf\ng\n"
    );
}

#[test]
fn final_newline_change_is_a_hunk() {
    let hs = hunks("a\nb", "a\nb\n");
    assert_eq!(hs.len(), 1);
    assert_eq!(apply_selected("a\nb", &hs, &[true]), "a\nb\n");
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a\n", "b\n", "c\r\n", "d", "é\n", "\n"]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn all_accepted_is_new_and_none_is_old(old in text(), new in text()) {
        let hs = hunks(&old, &new);
        prop_assert_eq!(apply_selected(&old, &hs, &vec![true; hs.len()]), new);
        prop_assert_eq!(apply_selected(&old, &hs, &vec![false; hs.len()]), old);
    }
}
